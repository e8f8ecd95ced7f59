"""Every bad input a user can give, in one table, with the message the user sees.

Admission rows are refused by the API server (`kubectl apply` fails with the
CRD's schema or CEL message); run-time rows are accepted, then fail for real
(the operator's S3 reads with the resource's own credentials, the exporter in
its image, the kubelet, the scheduler), and the check is the resource's Ready
condition: its reason and the message in the user's words (their s3:// URI,
the Secret they named, the target), never a pod-local path or a trace.

All run-time rows are applied at once to one namespace watched by one operator
process; the table with what each produced is printed (`pytest -s` shows it).
"""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from devcluster.controlplane import LocalCluster
from devcluster.crd import install_crd
from devcluster.minio import S3Server, add_tenant
from devcluster.operator_process import start_operator
from tests.conftest import SAMPLE_KEY
from tests.infra.wait import wait_for


@dataclass(frozen=True)
class Bad:
    name: str  # the resource's name
    what: str  # the bad input, in words
    spec: dict[str, Any]  # merged into the good spec; "{bucket}" etc. filled in
    message: str  # what the user must read (a part of it)
    reason: str | None = None  # run time: the Ready condition's reason
    admission: bool = False
    # Runs a whole TensorFlow export (about 4 GB): at most two at once, or 24 GB is not enough.
    heavy: bool = False


INT8 = {"precision": "int8", "calibration": {"imagesUri": "s3://{bucket}/calibration/images",
                                             "batches": 2, "batchSize": 2}}  # fmt: skip
CPU = {"name": "cpu", "nodeSelector": {"bodypose.dev/pool": "cpu"}, "backend": "onnxruntime"}
RTX = {
    "name": "l4",
    "nodeSelector": {"bodypose.dev/pool": "cpu"},
    "backend": "tensorrt-rtx",
    "computeCapabilities": ["8.9"],
}
GPU_TOLERATION = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def model(uri: str, secret: str = "bpnet-key", key: str = "key") -> dict[str, Any]:
    return {"model": {"uri": uri, "keySecretRef": {"name": secret, "key": key}}}


def output(uri: str = "s3://{bucket}/artifacts", secret: str = "s3-credentials") -> dict[str, Any]:
    return {"output": {"uri": uri, "credentialsSecretRef": {"name": secret}}}


TABLE = [
    # ---- admission: the CRD's schema and CEL rules -----------------------------------------
    Bad("a-height", "height not a multiple of 8", {"input": {"height": 322, "width": 448}},
        "input.height and input.width must be multiples of 8", admission=True),
    Bad("a-int8", "int8 with no calibration source", {"precision": "int8"},
        "precision int8 needs a calibration source", admission=True),
    Bad("a-dup", "two targets with one name", {"targets": [CPU, CPU]},
        "target names must be unique", admission=True),
    Bad("a-none", "no targets", {"targets": []}, "should have at least 1 items", admission=True),
    Bad("a-label", "a target name that is not a DNS label",
        {"targets": [{**CPU, "name": "Not_A_Label"}]}, "spec.targets[0].name", admission=True),
    Bad("a-prec", "an unknown precision", {"precision": "int4"}, 'Unsupported value: "int4"',
        admission=True),
    Bad("a-batches", "zero calibration batches",
        {**INT8, "calibration": {"imagesUri": "s3://bucket/images", "batches": 0}},
        "spec.calibration.batches: Invalid value: 0", admission=True),
    Bad("a-uri", "a model URI that is not s3://", model("http://x/m.tlt"), "spec.model.uri",
        admission=True),
    Bad("a-out", "an output that is not s3://", {"output": {"uri": "/data/out"}},
        "spec.output.uri", admission=True),
    Bad("a-chan", "one input channel", {"input": {"height": 224, "width": 320, "channels": 1}},
        "spec.input.channels", admission=True),
    Bad("a-mbs", "max batch size 0", {"engine": {"maxBatchSize": 0}}, "spec.engine.maxBatchSize",
        admission=True),
    Bad("a-cal", "a million calibration images and more",
        {**INT8, "calibration": {"imagesUri": "s3://bucket/images", "batches": 100000,
                                 "batchSize": 256}},
        "calibration.batches x calibration.batchSize must be at most 1000000 images",
        admission=True),
    Bad("a-backend", "an unknown backend", {"targets": [{**CPU, "backend": "tflite"}]},
        'Unsupported value: "tflite"', admission=True),
    Bad("a-hwc", "hardware compatibility asked of an onnxruntime target",
        {"targets": [{**CPU, "hardwareCompatibility": "ampere+"}]},
        "hardwareCompatibility ampere+ applies to tensorrt targets only", admission=True),
    Bad("a-rtx-hopper", "a tensorrt-rtx target for Hopper (9.0)",
        {"targets": [{**RTX, "computeCapabilities": ["9.0"]}]},
        "computeCapabilities: tensorrt-rtx builds for 7.5, 8.0, 8.6, 8.9, 12.0, 12.1 only (9.0 "
        "is Hopper, where its engines do not run: build those with tensorrt)", admission=True),
    Bad("a-rtx-int8", "an int8 resource with a tensorrt-rtx target",
        {**INT8, "targets": [RTX]}, "tensorrt-rtx targets build fp32 and fp16 only",
        admission=True),
    Bad("a-rtx-gpus", "a tensorrt-rtx target naming no GPU",
        {"targets": [{**RTX, "computeCapabilities": [], "nodeSelector": {"pool": "cpu"}}]},
        "tensorrt-rtx targets name the GPUs to build for: computeCapabilities, or a "
        "nodeSelector with nvidia.com/gpu.compute.major and nvidia.com/gpu.compute.minor",
        admission=True),
    Bad("a-cc-cpu", "compute capabilities asked of an onnxruntime target",
        {"targets": [{**CPU, "computeCapabilities": ["8.9"]}]},
        "computeCapabilities applies to tensorrt-rtx targets only", admission=True),
    Bad("a-opts-cpu", "backendOptions on an onnxruntime target (it declares none)",
        {"targets": [{**CPU, "backendOptions": {"label": "x"}}]},
        "backendOptions: the onnxruntime backend takes none", admission=True),
    Bad("a-eval-uri", "an evaluation set that is not on S3",
        {"evaluation": {"annotationsUri": "https://x/k.json", "imagesUri": "s3://bucket/i"}},
        "spec.evaluation.annotationsUri", admission=True),
    Bad("a-eval-drop", "a negative AP drop limit",
        {"evaluation": {"annotationsUri": "s3://bucket/k.json", "imagesUri": "s3://bucket/i",
                        "maxApDrop": -1}},
        "spec.evaluation.maxApDrop", admission=True),
    Bad("a-cos", "a cosine gate above 1", {"verification": {"minCosine": 1.5}},
        "spec.verification.minCosine", admission=True),
    Bad("a-queue", "a queue name Kueue would refuse", {"queueName": "GPU_Queue"},
        "queueName must name a Kueue LocalQueue: lowercase letters, digits, '-' and '.', "
        "starting and ending with a letter or digit, at most 63 characters", admission=True),
    Bad("a-export-queue", "an export queue name with a space", {"exportQueueName": "cpu queue"},
        "exportQueueName must name a Kueue LocalQueue: lowercase letters, digits, '-' and '.', "
        "starting and ending with a letter or digit, at most 63 characters", admission=True),
    Bad("a-queue-long", "a queue name longer than a label value may be",
        {"queueName": "q" * 64}, "spec.queueName: Too long: may not be more than 63",
        admission=True),
    # ---- run time: the key -----------------------------------------------------------------
    Bad("key-missing", "the key Secret has no such key", model("s3://{bucket}/models/bpnet.tlt",
        secret="key-elsewhere"), "couldn't find key key in Secret {ns}/key-elsewhere",
        "ConfigError"),
    Bad("key-empty", "an empty key", model("s3://{bucket}/models/bpnet.tlt", secret="key-empty"),
        "s3://{bucket}/models/bpnet.tlt", "WrongKey"),
    Bad("key-wrong", "a wrong key", model("s3://{bucket}/models/bpnet.tlt", secret="key-wrong"),
        "s3://{bucket}/models/bpnet.tlt", "WrongKey"),
    Bad("key-secret", "the key Secret does not exist",
        model("s3://{bucket}/models/bpnet.tlt", secret="nope"), 'secret "nope" not found',
        "ConfigError"),
    # ---- run time: the model ---------------------------------------------------------------
    Bad("model-missing", "no model object at the URI", model("s3://{bucket}/models/none.tlt"),
        "model s3://{bucket}/models/none.tlt does not exist", "ModelNotFound"),
    Bad("model-text", "not a .tlt file", model("s3://{bucket}/models/notes.tlt"),
        "s3://{bucket}/models/notes.tlt", "NotATaoModel"),
    Bad("model-cut", "a truncated .tlt", model("s3://{bucket}/models/truncated.tlt"),
        "s3://{bucket}/models/truncated.tlt", "CorruptModel"),
    Bad("model-bucket", "the model's bucket does not exist",
        model("s3://no-such-bucket-{run}/m.tlt"),
        "bucket no-such-bucket-{run} of s3://no-such-bucket-{run}/m.tlt does not exist",
        "BucketNotFound"),
    # ---- run time: S3 credentials and tenancy ----------------------------------------------
    Bad("cred-wrong", "credentials S3 rejects", output(secret="s3-wrong"),
        "S3 rejected the credentials (SignatureDoesNotMatch) when asked to read "
        "s3://{bucket}/models/bpnet.tlt", "CredentialsRejected"),
    Bad("cred-missing", "the credentials Secret does not exist", output(secret="s3-nope"),
        "Secret {ns}/s3-nope (spec.output.credentialsSecretRef) not found", "CredentialsNotFound"),
    Bad("cred-partial", "a credentials Secret without a secret key", output(secret="s3-partial"),
        "has no AWS_SECRET_ACCESS_KEY", "CredentialsInvalid"),
    Bad("cred-none", "no credentials Secret named", {"output": {"uri": "s3://{bucket}/artifacts"}},
        "spec.output.credentialsSecretRef is not set", "CredentialsRequired"),
    Bad("tenant", "tenant A's resource writing into tenant B's bucket",
        {**model("s3://{a}/models/bpnet.tlt"), **output("s3://{b}/artifacts", "tenant-a")},
        "access denied: cannot read s3://{b}/artifacts/", "AccessDenied"),
    Bad("read-only", "an output its credentials may read but not write",
        {**model("s3://{reader}/models/bpnet.tlt"), **output("s3://{bucket}/ro", "reader")},
        "cannot write to s3://{bucket}/ro/", "OutputNotWritable"),
    # ---- run time: calibration -------------------------------------------------------------
    Bad("cal-few", "fewer calibration images than batches x batch size",
        {**INT8, "calibration": {"imagesUri": "s3://{bucket}/calibration/images",
                                 "batches": 10, "batchSize": 4}},
        "--cal_image_dir s3://{bucket}/calibration/images holds 8 images", "InvalidInput"),
    Bad("cal-tensorfile", "a corrupt tensorfile",
        {**INT8, "calibration": {"tensorfileUri": "s3://{bucket}/calibration/corrupt.tensorfile",
                                 "batches": 2, "batchSize": 2}},
        "--cal_data_file s3://{bucket}/calibration/corrupt.tensorfile cannot be read",
        "InvalidInput"),
    Bad("cal-foreign", "a cal.bin for other tensor names",
        {**INT8, "calibration": {"cacheUri": "s3://{bucket}/calibration/foreign.bin"}},
        "--cal_cache_file s3://{bucket}/calibration/foreign.bin holds scales for none of this "
        "model's tensors", "InvalidInput", heavy=True),
    # ---- run time: where it runs -----------------------------------------------------------
    Bad("no-pool", "a pool with no nodes",
        {"targets": [{**CPU, "name": "tpu", "nodeSelector": {"bodypose.dev/pool": "tpu"}}]},
        "target tpu: no node can run Job", "NoMatchingNodes", heavy=True),
    Bad("no-image", "an image that cannot be pulled",
        {"targets": [{"name": "a100", "nodeSelector": {"bodypose.dev/pool": "a100"},
                      "tolerations": GPU_TOLERATION, "backend": "tensorrt"}]},
        "target a100: image bodypose-export/exporter-gpu:", "ImagePullBackOff", heavy=True),
    Bad("gate", "a verification gate no engine can meet",
        {**INT8, "verification": {"maxAbsDiff": 1e-30}}, "target cpu: ", "VerificationFailed",
        heavy=True),
]  # fmt: skip


def good_spec() -> dict[str, Any]:
    return {
        **model("s3://{bucket}/models/bpnet.tlt"),
        "input": {"height": 224, "width": 320},
        "precision": "fp32",
        "targets": [CPU],
        **output(),
    }


def fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: fill(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, names) for v in value]
    if isinstance(value, str):
        for k, v in names.items():
            value = value.replace("{" + k + "}", v)
    return value


def resource(row: Bad, names: dict[str, str]) -> dict[str, Any]:
    spec = good_spec()
    for key, value in copy.deepcopy(row.spec).items():
        if isinstance(value, dict) and isinstance(spec.get(key), dict) and key != "output":
            spec[key] = {**spec[key], **value}
        else:
            spec[key] = value
    return {"apiVersion": "bodypose.dev/v1alpha1", "kind": "BodyPoseExport",
            "metadata": {"name": row.name}, "spec": fill(spec, names)}  # fmt: skip


def test_every_bad_input_gets_a_message_in_the_users_words(
    cluster: LocalCluster,
    namespace: str,
    minio_endpoint: S3Server,
    s3_bucket: str,
    sample_dir: Path,
    tmp_path: Path,
) -> None:
    assert len(TABLE) >= 25 and len({row.name for row in TABLE}) == len(TABLE)
    install_crd(cluster.api_client())
    run = uuid.uuid4().hex[:8]
    tenant_a, tenant_b, reader = f"tenant-a-{run}", f"tenant-b-{run}", f"reader-{run}"
    account_a = add_tenant(minio_endpoint, tenant_a)
    add_tenant(minio_endpoint, tenant_b)
    account_reader = add_tenant(minio_endpoint, reader, read_only=(s3_bucket,))
    names = {"bucket": s3_bucket, "ns": namespace, "run": run, "a": tenant_a, "b": tenant_b,
             "reader": reader}  # fmt: skip

    s3 = minio_endpoint.client()
    tlt = (sample_dir / "bpnet_sample.tlt").read_bytes()
    for bucket in (s3_bucket, tenant_a, reader):
        s3.put_object(Bucket=bucket, Key="models/bpnet.tlt", Body=tlt)
    s3.put_object(Bucket=s3_bucket, Key="models/notes.tlt", Body=b"meeting notes, not a model\n")
    s3.put_object(Bucket=s3_bucket, Key="models/truncated.tlt", Body=tlt[: len(tlt) // 2])
    for image in sorted((sample_dir / "images").iterdir()):
        s3.upload_file(str(image), s3_bucket, f"calibration/images/{image.name}")
    s3.put_object(Bucket=s3_bucket, Key="calibration/corrupt.tensorfile",
                  Body=b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)  # fmt: skip
    s3.put_object(Bucket=s3_bucket, Key="calibration/foreign.bin",
                  Body=b"TRT-100800-EntropyCalibration2\nsome_other_net/conv1: 3c010a14\n"
                       b"some_other_net/relu1: 3d8e6bd4\n")  # fmt: skip

    core: Any = client.CoreV1Api(cluster.api_client())
    root = minio_endpoint.environment()
    for name, data in (
        ("bpnet-key", {"key": SAMPLE_KEY}), ("key-elsewhere", {"other": SAMPLE_KEY}),
        ("key-empty", {"key": ""}), ("key-wrong", {"key": "not-the-key"}),
        ("s3-credentials", root), ("s3-wrong", {**root, "AWS_SECRET_ACCESS_KEY": "wrong"}),
        ("s3-partial", {"AWS_ACCESS_KEY_ID": root["AWS_ACCESS_KEY_ID"]}),
        ("tenant-a", account_a.environment()), ("reader", account_reader.environment()),
    ):  # fmt: skip
        core.create_namespaced_secret(namespace, {"metadata": {"name": name}, "stringData": data})

    seen: dict[str, tuple[str, str]] = {}
    for row in (r for r in TABLE if r.admission):
        done = cluster.kubectl("apply", "-n", namespace, "-f", "-", check=False,
                               input=yaml.safe_dump(resource(row, names)))  # fmt: skip
        seen[row.name] = ("refused" if done.returncode else "ACCEPTED", done.stderr.strip())

    env = {"BODYPOSE_PENDING_CHECK_SECONDS": "3", "BODYPOSE_PENDING_DEADLINE_SECONDS": "20"}
    operator = start_operator(
        cluster.kubeconfig, tmp_path / "operator.log", env, namespaces=(namespace,)
    )
    custom: Any = client.CustomObjectsApi(cluster.api_client())

    def ready(name: str) -> dict[str, Any] | None:
        try:
            obj = custom.get_namespaced_custom_object(
                "bodypose.dev", "v1alpha1", namespace, "bodyposeexports", name
            )
        except ApiException as exc:  # a loaded API server may time out a read: ask again
            if exc.status < 500:
                raise
            return None
        status = obj.get("status") or {}
        if status.get("phase") not in ("Failed", "Ready"):
            return None
        return next(c for c in status["conditions"] if c["type"] == "Ready")

    def settle(rows: list[Bad]) -> None:
        for row in rows:
            try:
                cond = wait_for(lambda r=row: ready(r.name), 900, f"{row.name} to settle")  # type: ignore[misc]
                seen[row.name] = (cond["reason"], cond["message"])
            except TimeoutError:
                seen[row.name] = ("TIMEOUT", "")

    def apply(rows: list[Bad]) -> None:
        for row in rows:
            cluster.kubectl("apply", "-n", namespace, "-f", "-",
                            input=yaml.safe_dump(resource(row, names)))  # fmt: skip

    light = [r for r in TABLE if not r.admission and not r.heavy]
    heavy = [r for r in TABLE if r.heavy]
    try:
        apply(light)
        for wave in (heavy[i : i + 2] for i in range(0, len(heavy), 2)):
            apply(wave)
            settle(wave)
        settle(light)
    finally:
        operator.stop()
    print("\n" + "\n".join(f"{row.name:15} {row.what:55} {seen[row.name][0]:22} "
                           f"{seen[row.name][1][:300]}" for row in TABLE))  # fmt: skip

    wrong = []
    for row in TABLE:
        got_reason, got_message = seen[row.name]
        expected = fill(row.message, names)
        want_reason = "refused" if row.admission else row.reason
        if got_reason != want_reason or expected not in got_message:
            wrong.append(f"{row.name}: want {want_reason} + {expected!r}, got {got_reason}: "
                         f"{got_message[:400]}")  # fmt: skip
        for never in ("/scratch/", "/tmp/", "Traceback", SAMPLE_KEY):
            if never in got_message:
                wrong.append(f"{row.name}: the message shows {never!r}: {got_message[:400]}")
    assert wrong == [], "\n".join(wrong)
    log = operator.log.read_text()
    assert "Traceback" not in log, log[-3000:]
    assert json.dumps(seen)  # the table is what the closing note carries
