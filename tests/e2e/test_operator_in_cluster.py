"""The chart installed with helm, the operator running in its image as a pod, Jobs in theirs.

What a platform engineer does on a real cluster, on the local one: `helm install`
with the chart's default image names (the ones `make images` builds), the
operator pod started from the operator image with the chart's ServiceAccount
(in-cluster config, its token from the TokenRequest API: RBAC applies), an
export and a build Job from the exporter image, every pod's imageID the built
digest; then what a user sees when an image cannot be pulled and when an image
lacks the command a Job runs.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from devcluster.controlplane import LocalCluster
from devcluster.host import free_port
from devcluster.images import BuiltImage
from devcluster.minio import S3Server
from tests.conftest import SAMPLE_KEY
from tests.e2e.conftest import E2E_LATENCY_BUDGET_SECONDS, E2E_LATENCY_BUDGET_SET
from tests.infra.wait import wait_for
from tests.support.helm import CHART, helm_run

RELEASE = "bodypose"


def built(images: list[BuiltImage], name: str) -> BuiltImage:
    return next(i for i in images if i.name == name)


def bpe(cluster: LocalCluster, namespace: str, name: str) -> dict[str, Any]:
    api: Any = client.CustomObjectsApi(cluster.api)
    obj = api.get_namespaced_custom_object(
        "bodypose.dev", "v1alpha1", namespace, "bodyposeexports", name
    )
    return dict(obj)


def resource(name: str, bucket: str, height: int, targets: list[dict[str, Any]]) -> str:
    return yaml.safe_dump({
        "apiVersion": "bodypose.dev/v1alpha1",
        "kind": "BodyPoseExport",
        "metadata": {"name": name},
        "spec": {
            "model": {"uri": f"s3://{bucket}/models/bpnet.tlt",
                      "keySecretRef": {"name": "bpnet-key", "key": "key"}},
            "input": {"height": height, "width": 320},
            "precision": "fp32",
            "targets": targets,
            "output": {"uri": f"s3://{bucket}/artifacts",
                       "credentialsSecretRef": {"name": "s3-credentials"}},
        },
    })  # fmt: skip


@pytest.fixture
def installed(
    cluster: LocalCluster,
    helm: Path,
    namespace: str,
    minio_endpoint: S3Server,
    sample_dir: Path,
) -> Iterator[tuple[str, str]]:
    """The chart installed in `namespace` (watching it), a bucket with the sample model."""
    bucket = f"t-{uuid.uuid4().hex[:10]}"
    s3 = minio_endpoint.client()
    s3.create_bucket(Bucket=bucket)
    s3.upload_file(str(sample_dir / "bpnet_sample.tlt"), bucket, "models/bpnet.tlt")
    core: Any = client.CoreV1Api(cluster.api)
    for name, data in (("bpnet-key", {"key": SAMPLE_KEY}),
                       ("s3-credentials", minio_endpoint.environment())):  # fmt: skip
        core.create_namespaced_secret(namespace, {"metadata": {"name": name}, "stringData": data})
    done = helm_run(
        helm, "install", RELEASE, str(CHART), "--namespace", namespace, "--wait=false",
        "--set", f"watchNamespaces={{{namespace}}}",
        # Pods share this machine's network here: ports nothing else uses.
        "--set", f"health.port={free_port()}", "--set", f"metrics.port={free_port()}",
        "--set", "jobs.pendingDeadlineSeconds=30", *E2E_LATENCY_BUDGET_SET,
        kubeconfig=cluster.kubeconfig,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    try:
        yield namespace, bucket
    finally:
        helm_run(helm, "uninstall", RELEASE, "--namespace", namespace,
                 kubeconfig=cluster.kubeconfig)  # fmt: skip


def test_helm_installed_operator_runs_in_its_image_and_its_jobs_in_theirs(
    cluster: LocalCluster,
    helm: Path,
    images: list[BuiltImage],
    installed: tuple[str, str],
) -> None:
    namespace, bucket = installed
    core: Any = client.CoreV1Api(cluster.api)
    operator_image, exporter_image = built(images, "operator"), built(images, "exporter")

    def operator_pod() -> Any:
        pods = core.list_namespaced_pod(
            namespace, label_selector="app.kubernetes.io/name=bodypose-operator"
        ).items
        return pods[0] if pods and pods[0].status.phase == "Running" else None

    pod = wait_for(operator_pod, 120, "the operator pod to run")
    status = pod.status.container_statuses[0]
    assert status.image == operator_image.ref
    assert (
        status.image_id == f"docker.io/{operator_image.ref.split(':')[0]}@{operator_image.digest}"
    )

    cpu = [{"name": "cpu", "nodeSelector": {"bodypose.dev/pool": "cpu"}, "backend": "onnxruntime"}]
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=resource("fp32", bucket, 224, cpu))
    try:
        cluster.kubectl("wait", "-n", namespace, "--for=condition=Ready", "bpe/fp32",
                        "--timeout=280s")  # fmt: skip
    except AssertionError:
        logs = cluster.logs / "pods" / namespace
        tails = {p.name: p.read_text()[-2000:] for p in logs.rglob("*.log")}
        raise AssertionError(f"{bpe(cluster, namespace, 'fp32').get('status')}\n{tails}") from None
    jobs = core.list_namespaced_pod(namespace, label_selector="bodypose.dev/export=fp32").items
    assert {p.metadata.labels["bodypose.dev/stage"] for p in jobs} == {"export", "build"}
    for job_pod in jobs:
        (cs,) = job_pod.status.container_statuses
        assert cs.image == exporter_image.ref and cs.image_id.endswith(exporter_image.digest)
        assert cs.state.terminated.reason == "Completed"
    # The chart's jobs.latencyBudgetSeconds reached the build through the operator.
    (build,) = [p for p in jobs if p.metadata.labels["bodypose.dev/stage"] == "build"]
    args = build.spec.containers[0].args
    assert args[args.index("--latency_budget") + 1] == E2E_LATENCY_BUDGET_SECONDS

    # A tensorrt target: its GPU image was never built here, so it cannot be pulled.
    gpu = [{"name": "a100", "nodeSelector": {"bodypose.dev/pool": "a100"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists",
                             "effect": "NoSchedule"}]}]  # fmt: skip
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=resource("gpu", bucket, 224, gpu))

    def target_message(phase: str) -> str | None:
        targets = (bpe(cluster, namespace, "gpu").get("status") or {}).get("targets") or []
        return targets[0].get("message") if targets and targets[0]["phase"] == phase else None

    wait_for(lambda: "cannot be pulled" in (target_message("Building") or ""), 120,
             "the pull failure in the status")  # fmt: skip
    message = target_message("Building") or ""
    assert message.startswith(
        "target a100: image bodypose-export/exporter-gpu:0.1.0 cannot be pulled ("
    ), message
    failed = wait_for(lambda: target_message("Failed"), 120, "the pending deadline")
    assert failed.startswith("target a100: image bodypose-export/exporter-gpu:0.1.0 cannot be")
    ready = next(
        c for c in bpe(cluster, namespace, "gpu")["status"]["conditions"] if c["type"] == "Ready"
    )
    assert (ready["status"], ready["reason"]) == ("False", "ImagePullBackOff")

    # An export image without the exporter in it: the Job cannot start its command.
    done = helm_run(helm, "upgrade", RELEASE, str(CHART), "--namespace", namespace,
                    "--reuse-values", "--set", "exportJobImage=bodypose-export/base:bookworm",
                    kubeconfig=cluster.kubeconfig)  # fmt: skip
    assert done.returncode == 0, done.stderr
    wait_for(lambda: all(p.metadata.deletion_timestamp is None for p in
                         core.list_namespaced_pod(namespace).items) and operator_pod(),
             120, "the upgraded operator")  # fmt: skip
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=resource("nocmd", bucket, 288, cpu))

    def failed_export() -> dict[str, Any] | None:
        status = bpe(cluster, namespace, "nocmd").get("status") or {}
        cond = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), None)
        return cond if status.get("phase") == "Failed" else None

    cond = wait_for(failed_export, 180, "the export Job's start error in the status")
    assert cond["reason"] == "ContainerCannotRun"
    assert 'exec: "bpnet-export": executable file not found in $PATH' in cond["message"]
    assert "exit code 128" in cond["message"], json.dumps(cond)
