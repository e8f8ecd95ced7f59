"""The accuracy check through the operator, on the real local cluster.

The trained sample (`bpnet sample --trained`: a small BodyPoseNet trained here
on drawn people, from the cache after its first run) and its COCO
person-keypoints set go to MinIO; three int8 resources name that set in
`spec.evaluation` and run as Jobs from the exporter image:

- `accurate`: calibrated on the sample's drawings: Ready, the FP32 model's AP in
  the status, each target's AP, drop and limit, the worst drop in
  `kubectl get bpe -o wide`, the AP in the operator's Prometheus gauge;
- `blank`: calibrated on blank images: its target is refused with the numbers
  (both APs, the drop, the limit, TAO's advice);
- `deploy`: `engine.sdkCompatible` with the set: the plain graph's engine is the
  one evaluated and gated, the SDK-compatible one from the same calibration is
  published beside it.

`accurate` and `deploy` run under the real verification gates (int8's defaults;
percentile calibration, as the demo's resource: entropy clips this network's mostly
zero PAFs past them), so Ready means verified and AP-gated both. Only `blank` lifts
them: verification would refuse its engine first, and the AP gate is what it tests.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml
from kubernetes import client

from bodypose_exporter.verification.agreement_gates import judge
from devcluster.controlplane import LocalCluster
from devcluster.crd import install_crd
from devcluster.minio import S3Server
from devcluster.operator_process import start_operator
from tests.infra.wait import wait_for

KEY = "nvidia_tlt"
# Verification gates lifted, for the one resource the AP gate alone must judge.
LIFTED = {"maxAbsDiff": 1e9, "minCosine": 0.0, "minPeakAgreement": 0.0}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from bodypose_exporter.stages.sample import write_trained_sample

    return write_trained_sample(tmp_path_factory.mktemp("trained"), KEY)


def spec(bucket: str, cal: str, method: str = "percentile", **extra: Any) -> dict[str, Any]:
    """The sample's own size, int8, calibrated on `cal` (percentile ranges by default)."""
    return {
        "model": {"uri": f"s3://{bucket}/models/trained.tlt",
                  "keySecretRef": {"name": "bpnet-key", "key": "key"}},
        "input": {"height": 192, "width": 256}, "precision": "int8",
        "calibration": {"imagesUri": f"s3://{bucket}/{cal}", "batches": 6, "batchSize": 4,
                        "method": method},
        "evaluation": {"annotationsUri": f"s3://{bucket}/eval/person_keypoints.json",
                       "imagesUri": f"s3://{bucket}/eval/images"},
        "targets": [{"name": "cpu", "nodeSelector": {"bodypose.dev/pool": "cpu"},
                     "backend": "onnxruntime"}],
        "output": {"uri": f"s3://{bucket}/artifacts",
                   "credentialsSecretRef": {"name": "s3-credentials"}},
        **extra,
    }  # fmt: skip


def test_ap_per_target_gated_reported_and_the_deploy_engine_beside_it(
    cluster: LocalCluster,
    namespace: str,
    minio_endpoint: S3Server,
    s3_bucket: str,
    trained: Any,
    tmp_path: Path,
) -> None:
    install_crd(cluster.api_client())
    s3 = minio_endpoint.client()
    s3.upload_file(str(trained.model), s3_bucket, "models/trained.tlt")
    s3.upload_file(str(trained.annotations), s3_bucket, "eval/person_keypoints.json")
    for image in sorted(Path(trained.images).iterdir()):
        s3.upload_file(str(image), s3_bucket, f"eval/images/{image.name}")
    for image in sorted(Path(trained.calibration_images).iterdir()):
        s3.upload_file(str(image), s3_bucket, f"cal/drawings/{image.name}")
    blank = np.full((192, 256, 3), 127, np.uint8)
    for i in range(24):
        ok, data = cv2.imencode(".png", blank)
        assert ok
        s3.put_object(Bucket=s3_bucket, Key=f"cal/blank/{i:02d}.png", Body=data.tobytes())
    core: Any = client.CoreV1Api(cluster.api_client())
    custom: Any = client.CustomObjectsApi(cluster.api_client())
    for name, data in (("bpnet-key", {"key": KEY}),
                       ("s3-credentials", minio_endpoint.environment())):  # fmt: skip
        core.create_namespaced_secret(namespace, {"metadata": {"name": name}, "stringData": data})
    operator = start_operator(
        cluster.kubeconfig, tmp_path / "operator.log", namespaces=(namespace,)
    )

    def settled(name: str) -> dict[str, Any] | None:
        status = (
            custom.get_namespaced_custom_object(
                "bodypose.dev", "v1alpha1", namespace, "bodyposeexports", name
            ).get("status")
            or {}
        )
        return status if status.get("phase") in ("Ready", "Failed") else None

    resources = {
        "accurate": spec(s3_bucket, "cal/drawings"),
        # Entropy on blank images: percentile's ranges from them make an engine whose
        # heatmaps are anti-correlated (cosine -0.03), below even the lowest gate the CRD
        # takes (minCosine 0), so verification would refuse it before the AP gate.
        "blank": spec(s3_bucket, "cal/blank", method="entropy", verification=LIFTED),
        "deploy": spec(s3_bucket, "cal/drawings", engine={"sdkCompatible": True}),
    }
    try:
        for name, body in resources.items():
            doc = {"apiVersion": "bodypose.dev/v1alpha1", "kind": "BodyPoseExport",
                   "metadata": {"name": name}, "spec": body}  # fmt: skip
            cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(doc))
            # One TensorFlow export at a time: three at once crowd 2 cores and 24 GB.
            wait_for(lambda n=name: settled(n), 900, f"{name} to settle")  # type: ignore[misc]
        metrics = (
            urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics")
            .read()
            .decode()
        )
        wide = cluster.kubectl("get", "bpe", "-n", namespace, "-o", "wide").stdout
    finally:
        operator.stop()
    log = operator.log.read_text()
    assert "Traceback" not in log, log[-3000:]

    accurate = settled("accurate")
    assert accurate is not None and accurate["phase"] == "Ready", json.dumps(accurate, indent=1)
    reference = accurate["evaluation"]
    assert reference["images"] == 40 and reference["ap"] > 35  # measured 52.63
    (cpu,) = accurate["targets"]
    assert cpu["maxApDrop"] == 3.0  # int8's default, AP points
    assert cpu["apDrop"] == pytest.approx(reference["ap"] - cpu["ap"], abs=0.02)
    assert cpu["apDrop"] <= 3.0 and accurate["worstApDrop"] == cpu["apDrop"]
    # Verified against int8's own gates, not lifted ones: its figures pass them.
    assert judge("int8", cpu["verification"], {}).passed, cpu["verification"]
    header = wide.splitlines()[0].split()
    assert "AP-DROP" in header
    row = next(line.split() for line in wide.splitlines() if line.startswith("accurate"))
    assert float(row[header.index("AP-DROP")]) == pytest.approx(cpu["apDrop"])
    gauge = f'bodypose_target_ap{{namespace="{namespace}",resource="accurate",target="cpu"}}'
    assert any(line.startswith(gauge) and float(line.split()[-1]) == pytest.approx(cpu["ap"])
               for line in metrics.splitlines()), metrics  # fmt: skip

    refused = settled("blank")
    assert refused is not None and refused["phase"] == "Failed"
    (cpu,) = refused["targets"]
    assert cpu["phase"] == "Failed"
    ready = next(c for c in refused["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "AccuracyDropTooLarge"
    assert ready["message"].startswith("target cpu: ")
    for words in ("AP", "limit", "calibration"):
        assert words in ready["message"], ready["message"]

    deploy = settled("deploy")
    assert deploy is not None and deploy["phase"] == "Ready", json.dumps(deploy, indent=1)
    (cpu,) = deploy["targets"]
    assert "ap" in cpu and cpu["deployEngine"]["uri"] != cpu["engineUri"]
    # Both its engines passed the real gates (a failed one fails the Job); the evaluated
    # one's figures are in the status.
    assert judge("int8", cpu["verification"], {}).passed, cpu["verification"]
    listed = {o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix="artifacts/")
              ["Contents"]}  # fmt: skip
    for uri in (cpu["engineUri"], cpu["deployEngine"]["uri"]):
        assert uri.removeprefix(f"s3://{s3_bucket}/") in listed
