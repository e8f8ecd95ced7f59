"""The operator's failure paths on the real control plane, each from a real failure.

One operator (a process, with a short pending check and deadline) and one
resource per failure, all at once in one namespace; every Job runs from the
exporter image, so each failure is the exporter's or the kubelet's own, not a
made-up termination message. Each case asserts the condition a user reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from devcluster.controlplane import LocalCluster
from devcluster.crd import install_crd
from devcluster.operator_process import start_operator
from tests.conftest import SAMPLE_KEY, S3Endpoint
from tests.infra.wait import wait_for


def spec(bucket: str, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "model": {"uri": f"s3://{bucket}/models/bpnet.tlt",
                  "keySecretRef": {"name": "bpnet-key", "key": "key"}},
        "input": {"height": 224, "width": 320}, "precision": "fp32",
        "targets": [{"name": "cpu", "nodeSelector": {"bodypose.dev/pool": "cpu"},
                     "backend": "onnxruntime"}],
        "output": {"uri": f"s3://{bucket}/artifacts",
                   "credentialsSecretRef": {"name": "s3-credentials"}},
    }  # fmt: skip
    base.update(overrides)
    return base


def test_failures_reach_the_status_in_the_users_words(
    cluster: LocalCluster,
    namespace: str,
    s3_endpoint: S3Endpoint,
    s3_bucket: str,
    sample_dir: Path,
    tmp_path: Path,
) -> None:
    install_crd(cluster.api_client())
    s3 = s3_endpoint.client()
    s3.upload_file(str(sample_dir / "bpnet_sample.tlt"), s3_bucket, "models/bpnet.tlt")
    for image in sorted((sample_dir / "images").iterdir()):
        s3.upload_file(str(image), s3_bucket, f"calibration/images/{image.name}")
    core: Any = client.CoreV1Api(cluster.api)
    custom: Any = client.CustomObjectsApi(cluster.api)
    batch: Any = client.BatchV1Api(cluster.api)
    for name, data in (
        ("bpnet-key", {"key": SAMPLE_KEY}),
        ("wrong-key", {"key": "not-the-key"}),
        ("s3-credentials", s3_endpoint.environment()),
    ):
        core.create_namespaced_secret(namespace, {"metadata": {"name": name}, "stringData": data})
    env = {"BODYPOSE_PENDING_CHECK_SECONDS": "3",
           "BODYPOSE_PENDING_DEADLINE_SECONDS": "20"}  # fmt: skip
    operator = start_operator(
        cluster.kubeconfig, tmp_path / "operator.log", env, namespaces=(namespace,)
    )
    model = f"s3://{s3_bucket}/models/bpnet.tlt"
    cases = {
        "wrong-key": spec(s3_bucket, model={"uri": model,
                                            "keySecretRef": {"name": "wrong-key", "key": "key"}}),
        "no-model": spec(s3_bucket, model={"uri": f"s3://{s3_bucket}/models/none.tlt",
                                           "keySecretRef": {"name": "bpnet-key", "key": "key"}}),
        "no-secret": spec(s3_bucket, model={"uri": model,
                                            "keySecretRef": {"name": "nope", "key": "key"}}),
        # int8 differs from FP32 (fp32 on ONNX Runtime matches its reference exactly).
        "gate": spec(s3_bucket, precision="int8", verification={"maxAbsDiff": 1e-30},
                     calibration={"imagesUri": f"s3://{s3_bucket}/calibration/images",
                                  "batches": 2, "batchSize": 2}),
        "no-pool": spec(s3_bucket, targets=[{"name": "tpu", "backend": "onnxruntime",
                                             "nodeSelector": {"bodypose.dev/pool": "tpu"}}]),
        "changed": spec(s3_bucket, input={"height": 288, "width": 384}),
    }  # fmt: skip
    try:
        for name, body in cases.items():
            manifest = {"apiVersion": "bodypose.dev/v1alpha1", "kind": "BodyPoseExport",
                        "metadata": {"name": name}, "spec": body}  # fmt: skip
            cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest))

        def get(name: str) -> dict[str, Any]:
            obj = custom.get_namespaced_custom_object(
                "bodypose.dev", "v1alpha1", namespace, "bodyposeexports", name
            )
            return dict(obj.get("status") or {})

        def ready(name: str) -> dict[str, Any]:
            return next(c for c in get(name).get("conditions", []) if c["type"] == "Ready")

        # A spec change while the export Job runs: the old Job goes, a new one comes.
        def export_job(name: str) -> Any:
            jobs = batch.list_namespaced_job(
                namespace, label_selector=f"bodypose.dev/export={name},bodypose.dev/stage=export"
            ).items
            return jobs[0] if jobs else None

        old = wait_for(lambda: export_job("changed"), 60, "the export Job of 'changed'")
        changed = {"apiVersion": "bodypose.dev/v1alpha1", "kind": "BodyPoseExport",
                   "metadata": {"name": "changed"},
                   "spec": spec(s3_bucket, precision="fp16")}  # fmt: skip
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(changed))
        new = wait_for(
            lambda: (j := export_job("changed")) and j.metadata.name != old.metadata.name and j,
            60, "the new generation's export Job",
        )  # fmt: skip
        wait_for(lambda: not any(j.metadata.name == old.metadata.name for j in
                                 batch.list_namespaced_job(namespace).items), 60,
                 "the superseded Job to go")  # fmt: skip
        assert (
            new.metadata.labels["bodypose.dev/content-key"]
            != (old.metadata.labels["bodypose.dev/content-key"])
        )

        def failed(name: str) -> dict[str, Any] | None:
            return ready(name) if get(name).get("phase") == "Failed" else None

        seen = {
            name: wait_for(lambda n=name: failed(n), 300, f"{name} to fail")  # type: ignore[misc]
            for name in ("wrong-key", "no-model", "no-secret", "gate", "no-pool")
        }
        assert seen["wrong-key"]["reason"] == "WrongKey"
        assert model in seen["wrong-key"]["message"]
        assert (seen["no-model"]["reason"], seen["no-model"]["message"]) == (
            "ModelNotFound",
            f"model s3://{s3_bucket}/models/none.tlt does not exist",
        )
        assert export_job("no-model") is None  # refused before any Job
        assert seen["no-secret"]["reason"] == "ConfigError"
        assert 'secret "nope" not found' in seen["no-secret"]["message"]
        assert seen["gate"]["reason"] == "VerificationFailed"
        assert seen["gate"]["message"].startswith("target cpu: ")
        assert seen["no-pool"]["reason"] == "NoMatchingNodes"
        assert seen["no-pool"]["message"].startswith("target tpu: no node can run Job")
        assert "didn't match Pod's node affinity/selector" in seen["no-pool"]["message"]
        events = core.list_namespaced_event(
            namespace, field_selector="involvedObject.name=changed"
        ).items
        assert "Superseded" in {e.reason for e in events}
    finally:
        operator.stop()
        log = operator.log.read_text()
    assert "Traceback" not in log, log[-3000:]
