"""End to end on the real local control plane: kubectl apply -> Jobs on the right pools -> Ready.

The operator runs as its own process (`bodypose-operator`) against the local
API server and the loopback S3 server; Job pods run through the test executor.
GPU targets use the onnxruntime backend here (no TensorRT on these machines);
their Job spec is otherwise what a real GPU pool gets (nodeSelector, GPU
toleration, nvidia.com/gpu request).
"""

from __future__ import annotations

import configparser
import os
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from devcluster.controlplane import LocalCluster
from devcluster.crd import install_crd
from devcluster.operator_process import OperatorProcess, start_operator
from tests.conftest import SAMPLE_KEY, S3Endpoint
from tests.infra.audit import created, deleted, job_writes
from tests.infra.wait import wait_for
from tests.support.serving import check_against_model, load_model_config_pb2, parse_triton


@pytest.fixture
def operators(
    cluster: LocalCluster, namespace: str, s3_endpoint: S3Endpoint, tmp_path: Path
) -> Iterator[Callable[[], OperatorProcess]]:
    """start() runs one `bodypose-operator` process watching the test's namespace (other
    tests' resources, being deleted with their namespaces, are not its business); every
    one started is stopped at the end."""
    install_crd(cluster.api_client())
    started: list[OperatorProcess] = []

    def start() -> OperatorProcess:
        log = tmp_path / f"operator-{len(started)}.log"
        started.append(start_operator(cluster.kubeconfig, log, namespaces=(namespace,)))
        return started[-1]

    try:
        yield start
    finally:
        for op in started:
            op.stop()


def logs(*ops: OperatorProcess) -> str:
    return "\n".join(op.log.read_text()[-3000:] for op in ops)


def kubectl(cluster: LocalCluster, *args: str, stdin: str | None = None) -> str:
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    done = subprocess.run(
        [str(cluster.bins["kubectl"]), *args], env=env, input=stdin, capture_output=True, text=True
    )
    if done.returncode:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def resource(name: str, bucket: str) -> dict[str, Any]:
    gpu_toleration = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    return {
        "apiVersion": "bodypose.dev/v1alpha1",
        "kind": "BodyPoseExport",
        "metadata": {"name": name},
        "spec": {
            "model": {
                "uri": f"s3://{bucket}/models/bpnet.tlt",
                "keySecretRef": {"name": "bpnet-key", "key": "key"},
            },
            "input": {"height": 224, "width": 320},
            "precision": "int8",
            "calibration": {"imagesUri": f"s3://{bucket}/calibration/images",
                            "batches": 2, "batchSize": 2},
            "engine": {"maxBatchSize": 2},
            "targets": [
                {"name": "a100", "nodeSelector": {"bodypose.dev/pool": "a100"},
                 "tolerations": gpu_toleration, "backend": "onnxruntime",
                 "resources": {"limits": {"nvidia.com/gpu": "1"}}},
                {"name": "t4", "nodeSelector": {"bodypose.dev/pool": "t4"},
                 "tolerations": gpu_toleration, "backend": "onnxruntime",
                 "resources": {"limits": {"nvidia.com/gpu": "1"}}},
                {"name": "cpu", "nodeSelector": {"bodypose.dev/pool": "cpu"},
                 "backend": "onnxruntime"},
            ],
            "output": {"uri": f"s3://{bucket}/artifacts",
                       "credentialsSecretRef": {"name": "s3-credentials"}},
        },
    }  # fmt: skip


def wait_ready(cluster: LocalCluster, namespace: str, name: str, *ops: OperatorProcess) -> None:
    try:
        kubectl(cluster, "wait", "-n", namespace, "--for=condition=Ready", f"bpe/{name}",
                "--timeout=600s")  # fmt: skip
    except AssertionError:
        status = kubectl(cluster, "get", "bpe", name, "-n", namespace, "-o", "yaml")
        raise AssertionError(f"not Ready:\n{status}\n{logs(*ops)}") from None


def prepare(
    cluster: LocalCluster, namespace: str, s3_endpoint: S3Endpoint, bucket: str, sample: Path
) -> tuple[Any, Any]:
    """The sample model and images in the bucket, the key and S3 Secrets in the namespace;
    (boto3 S3 client, CoreV1Api)."""
    s3 = s3_endpoint.client()
    s3.upload_file(str(sample / "bpnet_sample.tlt"), bucket, "models/bpnet.tlt")
    for image in sorted((sample / "images").iterdir()):
        s3.upload_file(str(image), bucket, f"calibration/images/{image.name}")
    core: Any = client.CoreV1Api(cluster.api_client())
    for name, data in (("bpnet-key", {"key": SAMPLE_KEY}),
                       ("s3-credentials", s3_endpoint.environment())):  # fmt: skip
        core.create_namespaced_secret(namespace, {"metadata": {"name": name}, "stringData": data})
    return s3, core


def check_serving_configs(s3: Any, bucket: str, target: dict[str, Any], work: Path) -> None:
    """The target's Triton config, parsed by Triton's own protobuf and checked against the
    model in its repository; its DeepStream config, parsed as nvinfer's INI."""
    work.mkdir(parents=True)
    serving = target["serving"]

    def fetch(uri: str, name: str) -> Path:
        path = work / name
        s3.download_file(bucket, uri.removeprefix(f"s3://{bucket}/"), str(path))
        return path

    config = parse_triton(fetch(serving["tritonConfig"], "config.pbtxt").read_text(),
                          load_model_config_pb2())  # fmt: skip
    assert config.platform == "onnxruntime_onnx"
    model = fetch(f"{serving['tritonRepository']}/{config.name}/1/model.onnx", "model.onnx")
    check_against_model(config, model, load_model_config_pb2(), max_batch=2)
    nvinfer = configparser.ConfigParser()
    nvinfer.read_string(fetch(serving["deepstreamConfig"], "pgie.txt").read_text())
    keys = dict(nvinfer["property"])
    assert "tlt-model-key" not in keys and keys["network-mode"] == "1"  # 1: int8
    assert keys["infer-dims"] == "224;320;3" and keys["int8-calib-file"].endswith("cal.bin")


def jobs_of(cluster: LocalCluster, namespace: str) -> list[Any]:
    return list(client.BatchV1Api(cluster.api_client()).list_namespaced_job(namespace).items)


def test_int8_three_pools_through_an_operator_restart_then_reuse(
    cluster: LocalCluster,
    namespace: str,
    s3_endpoint: S3Endpoint,
    s3_bucket: str,
    sample_dir: Path,
    operators: Callable[[], OperatorProcess],
    tmp_path: Path,
) -> None:
    s3, core = prepare(cluster, namespace, s3_endpoint, s3_bucket, sample_dir)

    first = operators()
    manifest = yaml.safe_dump(resource("demo", s3_bucket))
    kubectl(cluster, "apply", "-n", namespace, "-f", "-", stdin=manifest)
    started = time.monotonic()

    # Restart safety: kill the operator (SIGKILL) as soon as it has created the
    # export Job, while that Job runs; a new operator must neither make a second
    # Job nor lose the Job's result.
    # Killed once its ExportStarted event is posted too (kopf posts events from a queue a
    # moment after the Job is made; a kill before that loses the event, not the Job).
    def export_started() -> bool:
        events = core.list_namespaced_event(namespace, field_selector="reason=ExportStarted")
        return bool(events.items)

    deadline = time.monotonic() + 120
    while not (jobs_of(cluster, namespace) and export_started()):
        assert time.monotonic() < deadline, f"no export Job:\n{logs(first)}"
        time.sleep(0.5)
    first.stop(kill=True)
    second = operators()
    wait_ready(cluster, namespace, "demo", first, second)
    from tests.conftest import FIGURES

    FIGURES.append(
        f"operator e2e int8, 3 targets, operator killed and restarted mid-export: Ready after "
        f"{time.monotonic() - started:.0f}s"
    )

    bpe = yaml.safe_load(kubectl(cluster, "get", "bpe", "demo", "-n", namespace, "-o", "yaml"))
    status = bpe["status"]
    assert status["phase"] == "Ready" and status["readyTargets"] == "3/3"
    assert status["observedGeneration"] == bpe["metadata"]["generation"]
    conditions = {c["type"]: c for c in status["conditions"]}
    for kind in ("Ready", "Exported", "Calibrated", "Built"):
        assert conditions[kind]["status"] == "True", conditions[kind]
    assert conditions["Calibrated"]["message"].startswith(
        "cal.bin from 4 images in 2 batches (entropy); QDQ vs FP32 on 4 held-back images"
    )
    base = f"artifacts/{namespace}/demo/{status['contentKey']}"
    prefix = f"s3://{s3_bucket}/{base}"
    artifacts = status["artifacts"]
    assert artifacts["etlt"]["uri"] == f"{prefix}/bpnet_model.etlt"
    assert artifacts["calibrationCache"]["uri"] == f"{prefix}/cal.bin"
    assert artifacts["qdqModel"]["uri"] == f"{prefix}/bpnet_model.qdq.onnx"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket)["Contents"]}
    shared = {"bpnet_model.etlt", "bpnet_model.onnx", "cal.bin", "bpnet_model.qdq.onnx",
              "manifest.json"}  # fmt: skip
    assert {f"{base}/{name}" for name in shared} <= keys
    cal_bin = s3.get_object(Bucket=s3_bucket, Key=f"{base}/cal.bin")["Body"].read()
    assert cal_bin.startswith(b"TRT-") and b"input_1:0: " in cal_bin
    for target in status["targets"]:
        assert target["phase"] == "Ready"
        assert target["engineUri"].endswith(".int8.onnx")  # an ONNX Runtime artifact
        engine_key = target["engineUri"][len(f"s3://{s3_bucket}/") :]
        assert engine_key in keys and (
            f"{base}/targets/{target['name']}/{target['identity']}/manifest.json" in keys
        )
        assert target["verification"]["cosine"] > 0.99
        assert target["runtime"] == "ONNX Runtime"
        check_serving_configs(s3, s3_bucket, target, tmp_path / target["name"])

    # The Jobs ran on their own pools, once each, with the key only as a secretKeyRef.
    pods = core.list_namespaced_pod(namespace).items
    pools = {
        p.metadata.labels.get("bodypose.dev/target", "export"): p.spec.node_name.rsplit("-", 1)[0]
        for p in pods
    }
    assert pools["a100"] == "a100" and pools["t4"] == "t4" and pools["cpu"] == "cpu"
    jobs = jobs_of(cluster, namespace)
    assert sorted(j.metadata.labels.get("bodypose.dev/target", "export") for j in jobs) == [
        "a100", "cpu", "export", "t4"
    ]  # fmt: skip
    for job in jobs:
        assert SAMPLE_KEY not in str(job.to_dict())
    # Each made once across the kill (a second create would be a 409, seen only in the
    # API server's requests), none deleted.
    writes = job_writes(cluster, namespace)
    assert created(writes) == {j.metadata.name: 1 for j in jobs}, writes
    assert not deleted(writes), writes

    # What happened is in the events, and the restarted operator's metrics say Ready.
    events = core.list_namespaced_event(
        namespace, field_selector="involvedObject.kind=BodyPoseExport,involvedObject.name=demo"
    ).items
    reasons = {e.reason for e in events}
    assert {"ExportStarted", "Exported", "BuildStarted", "Built", "Ready"} <= reasons, reasons
    body = urllib.request.urlopen(f"http://127.0.0.1:{second.metrics_port}/metrics").read()
    assert b'bodypose_exports{phase="Ready"} 1.0' in body
    assert b"bodypose_reconciles_total" in body
    with urllib.request.urlopen(f"http://127.0.0.1:{second.liveness_port}/healthz") as health:
        assert health.status == 200

    # A new generation that changes no artifact (a target's scheduling only) creates no
    # Job: asserted once the operator has written the status for that generation.
    respec = resource("demo", s3_bucket)
    respec["spec"]["targets"][2]["resources"] = {"requests": {"cpu": "2", "memory": "2Gi"}}
    kubectl(cluster, "apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(respec))
    custom: Any = client.CustomObjectsApi(cluster.api_client())

    def observed() -> dict[str, Any] | None:
        obj = custom.get_namespaced_custom_object(
            "bodypose.dev", "v1alpha1", namespace, "bodyposeexports", "demo"
        )
        status = obj.get("status") or {}
        generation = obj["metadata"]["generation"]
        return status if generation > bpe["metadata"]["generation"] and status.get(
            "observedGeneration") == generation else None  # fmt: skip

    assert wait_for(observed, 60, "the status of the new generation")["phase"] == "Ready"
    assert len(jobs_of(cluster, namespace)) == 4
    table = kubectl(cluster, "get", "bpe", "-n", namespace)
    assert "224x320" in table and "3/3" in table and "Ready" in table

    # A second resource with the same content is Ready without any new Job.
    kubectl(cluster, "apply", "-n", namespace, "-f", "-",
            stdin=yaml.safe_dump(resource("copy", s3_bucket)))  # fmt: skip
    wait_ready(cluster, namespace, "copy", second)
    assert len(jobs_of(cluster, namespace)) == 4
    copy = yaml.safe_load(kubectl(cluster, "get", "bpe", "copy", "-n", namespace, "-o", "yaml"))
    assert copy["status"]["artifacts"]["calibrationCache"]["uri"] == f"{prefix}/cal.bin"
    copy_events = core.list_namespaced_event(
        namespace, field_selector="involvedObject.kind=BodyPoseExport,involvedObject.name=copy"
    ).items
    assert "Reused" in {e.reason for e in copy_events}

    # Deleting a resource after Ready removes its Jobs and their pods (owner references)
    # and keeps its artifacts in S3.
    kubectl(cluster, "delete", "bpe", "demo", "-n", namespace, "--wait=true")
    wait_for(
        lambda: not jobs_of(cluster, namespace), 60, "the garbage collector to remove the Jobs"
    )
    wait_for(lambda: not core.list_namespaced_pod(namespace).items, 60, "the pods to go")
    kept = {o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket)["Contents"]}
    assert keys <= kept


def test_deleting_a_resource_mid_build_stops_its_jobs_and_keeps_what_was_published(
    cluster: LocalCluster,
    namespace: str,
    s3_endpoint: S3Endpoint,
    s3_bucket: str,
    sample_dir: Path,
    operators: Callable[[], OperatorProcess],
) -> None:
    s3, core = prepare(cluster, namespace, s3_endpoint, s3_bucket, sample_dir)
    operator = operators()
    kubectl(cluster, "apply", "-n", namespace, "-f", "-",
            stdin=yaml.safe_dump(resource("mid", s3_bucket)))  # fmt: skip

    def building() -> list[Any]:
        pods = core.list_namespaced_pod(namespace, label_selector="bodypose.dev/stage=build")
        return [p for p in pods.items if p.status.phase == "Running"]

    wait_for(building, 240, "a build pod to run")
    published = {o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket)["Contents"]}
    kubectl(cluster, "delete", "bpe", "mid", "-n", namespace, "--wait=true")
    wait_for(
        lambda: not jobs_of(cluster, namespace), 60, "the garbage collector to remove the Jobs"
    )
    wait_for(lambda: not core.list_namespaced_pod(namespace).items, 60, "the pods to go")
    kept = {o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket)["Contents"]}
    assert published <= kept and any(k.endswith("/manifest.json") for k in kept)
    # The operator has had the Jobs' last events once it has had a later one: a Job with its
    # labels that nothing owns (suspended: no pod), which it logs once and ignores.
    batch: Any = client.BatchV1Api(cluster.api)
    batch.create_namespaced_job(namespace, {
        "metadata": {"name": "after-the-delete",
                     "labels": {"app.kubernetes.io/managed-by": "bodypose-operator"}},
        "spec": {"suspend": True, "template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "c", "image": "bodypose-export/base:bookworm"}]}}},
    })  # fmt: skip
    stray = f"Job {namespace}/after-the-delete carries the operator's labels but no"
    wait_for(lambda: stray in operator.log.read_text(), 60, "the operator to see a later event")
    log = operator.log.read_text()
    assert "Traceback" not in log and "ERROR" not in log, log[-3000:]
