"""End to end on the real local control plane: kubectl apply -> Jobs on the right pools -> Ready.

The operator runs as its own process (`bodypose-operator`) against the local
API server and the loopback S3 server; Job pods run through the test executor.
GPU targets use the onnxruntime backend here (no TensorRT on these machines);
their Job spec is otherwise what a real GPU pool gets (nodeSelector, GPU
toleration, nvidia.com/gpu request).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.conftest import SAMPLE_KEY, S3Endpoint, free_port
from tests.infra.controlplane import LocalCluster
from tests.infra.crd import install_crd


@pytest.fixture
def operator(cluster: LocalCluster, s3_endpoint: S3Endpoint, tmp_path: Path) -> Iterator[Path]:
    install_crd(cluster.api_client())
    log = tmp_path / "operator.log"
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig),
        "BODYPOSE_RESYNC_SECONDS": "2",
        "BODYPOSE_EXTRA_POD_LABELS": "bodypose.dev/executor=local",
        "BODYPOSE_EXPORTER_IMAGE": "local/bodypose-exporter:test",
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "bodypose-operator"),
             f"--liveness=http://127.0.0.1:{free_port()}/healthz",
             f"--metrics-port={free_port()}"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
            "precision": "fp16",
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


def test_apply_wait_ready_and_reapply_makes_no_job(
    cluster: LocalCluster,
    namespace: str,
    s3_endpoint: S3Endpoint,
    s3_bucket: str,
    sample_dir: Path,
    operator: Path,
) -> None:
    s3 = s3_endpoint.client()
    s3.upload_file(str(sample_dir / "bpnet_sample.tlt"), s3_bucket, "models/bpnet.tlt")
    core = client.CoreV1Api(cluster.api_client())
    core.create_namespaced_secret(namespace, {"metadata": {"name": "bpnet-key"},
                                              "stringData": {"key": SAMPLE_KEY}})  # fmt: skip
    core.create_namespaced_secret(namespace, {
        "metadata": {"name": "s3-credentials"},
        "stringData": {"AWS_ACCESS_KEY_ID": s3_endpoint.access_key,
                       "AWS_SECRET_ACCESS_KEY": s3_endpoint.secret_key,
                       "AWS_ENDPOINT_URL": s3_endpoint.url,
                       "AWS_DEFAULT_REGION": s3_endpoint.region},
    })  # fmt: skip
    manifest = yaml.safe_dump(resource("demo", s3_bucket))
    kubectl(cluster, "apply", "-n", namespace, "-f", "-", stdin=manifest)
    started = time.monotonic()
    try:
        kubectl(cluster, "wait", "-n", namespace, "--for=condition=Ready", "bpe/demo",
                "--timeout=600s")  # fmt: skip
    except AssertionError:
        status = kubectl(cluster, "get", "bpe", "demo", "-n", namespace, "-o", "yaml")
        raise AssertionError(f"not Ready:\n{status}\n{operator.read_text()[-4000:]}") from None
    from tests.conftest import FIGURES

    FIGURES.append(f"operator e2e fp16, 3 targets: Ready after {time.monotonic() - started:.0f}s")

    bpe = yaml.safe_load(kubectl(cluster, "get", "bpe", "demo", "-n", namespace, "-o", "yaml"))
    status = bpe["status"]
    assert status["phase"] == "Ready" and status["readyTargets"] == "3/3"
    assert status["observedGeneration"] == bpe["metadata"]["generation"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    prefix = f"s3://{s3_bucket}/artifacts/{namespace}/demo/{status['contentKey']}"
    assert status["artifacts"]["etlt"]["uri"] == f"{prefix}/bpnet_model.etlt"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket)["Contents"]}
    base = f"artifacts/{namespace}/demo/{status['contentKey']}"
    assert {f"{base}/bpnet_model.etlt", f"{base}/bpnet_model.onnx", f"{base}/manifest.json"} <= keys
    for target in status["targets"]:
        assert target["phase"] == "Ready"
        engine_key = target["engineUri"][len(f"s3://{s3_bucket}/") :]
        assert engine_key in keys and f"{base}/targets/{target['name']}/manifest.json" in keys
        assert target["verification"]["cosine"] > 0.999

    # The Jobs ran on their own pools, with the key only as a secretKeyRef.
    pods = core.list_namespaced_pod(namespace).items
    pools = {
        p.metadata.labels.get("bodypose.dev/target", "export"): p.spec.node_name.rsplit("-", 1)[0]
        for p in pods
    }
    assert pools["a100"] == "a100" and pools["t4"] == "t4" and pools["cpu"] == "cpu"
    jobs = client.BatchV1Api(cluster.api_client()).list_namespaced_job(namespace).items
    assert len(jobs) == 4
    for job in jobs:
        assert SAMPLE_KEY not in str(job.to_dict())

    # Re-applying the same spec creates no Job; the status stays Ready.
    kubectl(cluster, "apply", "-n", namespace, "-f", "-", stdin=manifest)
    time.sleep(6)
    assert len(client.BatchV1Api(cluster.api_client()).list_namespaced_job(namespace).items) == 4
    table = kubectl(cluster, "get", "bpe", "-n", namespace)
    assert "224x320" in table and "3/3" in table and "Ready" in table
