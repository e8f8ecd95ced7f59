"""A TensorRT-RTX engine built by a build Job in the exporter image, for the l4 pool's GPU.

The resource is fp16 with a tensorrt-rtx target on the l4 pool (compute
capability 8.9 by its GPU feature discovery labels, no GPU on this machine)
and an onnxruntime target on the cpu pool. The export Job publishes the FP16
model; the l4 build Job runs NVIDIA's TensorRT-RTX builder inside the exporter
image, on the l4 node, and writes a real engine for 8.9. Nothing can run it
here, so the target is Ready with `notRun` and no verification figures, and
the Built condition says so; the cpu target is verified as usual.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from devcluster.controlplane import LocalCluster
from devcluster.operator_process import OperatorProcess
from tests.conftest import S3Endpoint
from tests.e2e.test_operator_flow import kubectl, operators, prepare, wait_ready

__all__ = ["operators"]  # the fixture, used by name

VERSION = "1.7.1.116"


def fp16_resource(bucket: str) -> dict[str, Any]:
    return {
        "apiVersion": "bodypose.dev/v1alpha1",
        "kind": "BodyPoseExport",
        "metadata": {"name": "rtx"},
        "spec": {
            "model": {"uri": f"s3://{bucket}/models/bpnet.tlt",
                      "keySecretRef": {"name": "bpnet-key", "key": "key"}},
            "input": {"height": 224, "width": 320},
            "precision": "fp16",
            "engine": {"maxBatchSize": 2},
            "targets": [
                {"name": "l4", "backend": "tensorrt-rtx",
                 "nodeSelector": {"bodypose.dev/pool": "l4",
                                  "nvidia.com/gpu.compute.major": "8",
                                  "nvidia.com/gpu.compute.minor": "9"},
                 "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists",
                                  "effect": "NoSchedule"}]},
                {"name": "cpu", "nodeSelector": {"bodypose.dev/pool": "cpu"},
                 "backend": "onnxruntime"},
            ],
            "output": {"uri": f"s3://{bucket}/artifacts",
                       "credentialsSecretRef": {"name": "s3-credentials"}},
        },
    }  # fmt: skip


def test_an_fp16_resource_gets_a_tensorrt_rtx_engine_built_for_the_l4_pool_and_not_run(
    cluster: LocalCluster,
    namespace: str,
    s3_endpoint: S3Endpoint,
    s3_bucket: str,
    sample_dir: Path,
    operators: Callable[[], OperatorProcess],
    tmp_path: Path,
) -> None:
    s3, _ = prepare(cluster, namespace, s3_endpoint, s3_bucket, sample_dir)
    op = operators()
    kubectl(cluster, "apply", "-n", namespace, "-f", "-",
            stdin=yaml.safe_dump(fp16_resource(s3_bucket)))  # fmt: skip
    wait_ready(cluster, namespace, "rtx", op)
    api: Any = client.CustomObjectsApi(cluster.api_client())
    status = api.get_namespaced_custom_object(
        "bodypose.dev", "v1alpha1", namespace, "bodyposeexports", "rtx"
    )["status"]
    targets = {t["name"]: t for t in status["targets"]}
    l4, cpu = targets["l4"], targets["cpu"]
    assert l4["phase"] == "Ready" and l4["notRun"].startswith("no GPU in this pod")
    assert "verification" not in l4
    assert l4["backendStatus"] == {"computeCapabilities": "8.9", "tensorrtRtxVersion": VERSION}
    assert l4["engineUri"].endswith(f"/targets/l4/{l4['identity']}/bpnet_model.224.320.fp16."
                                    f"sm89.trtrtx{VERSION}.engine")  # fmt: skip
    assert cpu["phase"] == "Ready" and cpu["verification"]["cosine"] >= 0.999
    # ONNX Runtime's CPU provider has no FP16 convolutions: the cpu artifact is the FP32 graph,
    # and its name and status say so; the l4 engine is FP16.
    assert cpu["engineUri"].endswith("/bpnet_model.224.320.fp32.onnx"), cpu["engineUri"]
    assert (cpu["precision"], l4["precision"]) == ("fp32", "fp16")
    assert "no FP16 convolution kernels" in cpu["precisionReason"]
    built = next(c for c in status["conditions"] if c["type"] == "Built")
    assert "l4 built ahead of time and not run" in built["message"]

    # The engine in S3 is TensorRT-RTX's, as big as the manifest says, with its record.
    key = l4["engineUri"].removeprefix(f"s3://{s3_bucket}/")
    engine = tmp_path / "l4.engine"
    s3.download_file(s3_bucket, key, str(engine))
    assert engine.read_bytes()[:4] == b"vtrt" and engine.stat().st_size == l4["sizeBytes"]
    manifest_key = key.rpartition("/")[0] + "/manifest.json"
    manifest = json.loads(s3.get_object(Bucket=s3_bucket, Key=manifest_key)["Body"].read())
    assert manifest["compatibility"] == {
        "computeCapabilities": "8.9",
        "tensorrtRtxVersion": VERSION,
    }
    assert manifest["build"]["fp16Route"] == "strong"
    assert manifest["inputs"]["fp16Model"].endswith("/bpnet_model.fp16.onnx")
    assert manifest["verification"]["run"] is False
    assert "epcontext-model" in [a["kind"] for a in manifest["artifacts"]]
    # The build Job ran on the l4 node, in the exporter image, with no GPU asked for.
    pods = (
        client.CoreV1Api(cluster.api_client())
        .list_namespaced_pod(namespace, label_selector="bodypose.dev/target=l4")
        .items
    )
    assert pods and {p.spec.node_name for p in pods} == {"l4-0"}
    limits = pods[0].spec.containers[0].resources.limits or {}
    assert "nvidia.com/gpu" not in limits
