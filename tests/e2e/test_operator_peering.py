"""Two operator replicas with kopf peering: one works, the other stands by and takes over.

The operators run as processes (two replicas on one host, told apart by POD_ID,
as the chart's pods are by their names) against the local control plane; their
Jobs run from the exporter image. The active one is killed (SIGKILL: a node
lost) while its resource is exporting; the standby resumes once the dead one's
peering entry expires, and the resource becomes Ready with no Job made twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
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

PEERING_CRDS = (
    Path(__file__).resolve().parents[2] / "charts" / "bodypose-operator" / "crds"
    / "kopf-peerings.yaml"
)  # fmt: skip
PEERING = "bodypose-e2e"


@pytest.fixture
def replicas(
    cluster: LocalCluster, namespace: str, s3_endpoint: S3Endpoint, tmp_path: Path
) -> Iterator[dict[str, OperatorProcess]]:
    """Two replicas watching the test's namespace, peering through a KopfPeering there
    (what the chart makes for each of its watchNamespaces)."""
    install_crd(cluster.api_client())
    cluster.kubectl("apply", "-f", str(PEERING_CRDS))
    cluster.kubectl("wait", "--for=condition=Established", "crd/kopfpeerings.kopf.dev")
    peering = {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering",
               "metadata": {"name": PEERING, "namespace": namespace}}  # fmt: skip
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(peering))
    env = {"BODYPOSE_PEERING": PEERING}
    started = {
        pod: start_operator(
            cluster.kubeconfig,
            tmp_path / f"{pod}.log",
            {**env, "POD_ID": pod},
            namespaces=(namespace,),
        )
        for pod in ("op-a", "op-b")
    }
    try:
        yield started
    finally:
        for op in started.values():
            op.stop()


def peers(cluster: LocalCluster, namespace: str) -> dict[str, Any]:
    api: Any = client.CustomObjectsApi(cluster.api)
    obj = api.get_namespaced_custom_object("kopf.dev", "v1", namespace, "kopfpeerings", PEERING)
    return dict(obj.get("status") or {})


def test_the_standby_replica_takes_over_with_no_duplicate_job(
    cluster: LocalCluster,
    namespace: str,
    s3_endpoint: S3Endpoint,
    s3_bucket: str,
    sample_dir: Path,
    replicas: dict[str, OperatorProcess],
) -> None:
    s3 = s3_endpoint.client()
    s3.upload_file(str(sample_dir / "bpnet_sample.tlt"), s3_bucket, "models/bpnet.tlt")
    core: Any = client.CoreV1Api(cluster.api)
    core.create_namespaced_secret(namespace, {"metadata": {"name": "bpnet-key"},
                                              "stringData": {"key": SAMPLE_KEY}})  # fmt: skip
    credentials = {
        "AWS_ENDPOINT_URL": s3_endpoint.url, "AWS_ACCESS_KEY_ID": s3_endpoint.access_key,
        "AWS_SECRET_ACCESS_KEY": s3_endpoint.secret_key, "AWS_DEFAULT_REGION": s3_endpoint.region,
    }  # fmt: skip
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "s3-credentials"}, "stringData": credentials}
    )

    both = wait_for(lambda: len(peers(cluster, namespace)) == 2 and peers(cluster, namespace),
                    60, "both replicas")  # fmt: skip
    active = max(both, key=lambda pod: both[pod]["priority"])
    standby = next(pod for pod in both if pod != active)
    # The standby may start paused or pause once it sees the other: either way kopf has it
    # resume only when the active one is gone, which is what is asserted below.

    resource = {
        "apiVersion": "bodypose.dev/v1alpha1", "kind": "BodyPoseExport",
        "metadata": {"name": "peered"},
        "spec": {
            "model": {"uri": f"s3://{s3_bucket}/models/bpnet.tlt",
                      "keySecretRef": {"name": "bpnet-key", "key": "key"}},
            "input": {"height": 224, "width": 320}, "precision": "fp32",
            "targets": [{"name": "cpu", "nodeSelector": {"bodypose.dev/pool": "cpu"},
                         "backend": "onnxruntime"}],
            "output": {"uri": f"s3://{s3_bucket}/artifacts",
                       "credentialsSecretRef": {"name": "s3-credentials"}},
        },
    }  # fmt: skip
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(resource))
    batch: Any = client.BatchV1Api(cluster.api)
    wait_for(lambda: batch.list_namespaced_job(namespace).items, 60, "the export Job")
    resumed_before = replicas[standby].log.read_text().count("Resuming operations after the pause")
    replicas[active].stop(kill=True)
    killed_at = time.monotonic()

    cluster.kubectl("wait", "-n", namespace, "--for=condition=Ready", "bpe/peered",
                    "--timeout=280s")  # fmt: skip
    took = time.monotonic() - killed_at
    jobs = sorted(j.metadata.name for j in batch.list_namespaced_job(namespace).items)
    assert len(jobs) == 2, jobs  # one export, one build
    # None made twice across the takeover: each created once (a second create of the
    # same name is a 409, which only the API server's requests show), none deleted.
    writes = job_writes(cluster, namespace)
    assert created(writes) == dict.fromkeys(jobs, 1), writes
    assert not deleted(writes), writes
    resumed = replicas[standby].log.read_text().count("Resuming operations after the pause")
    assert resumed > resumed_before  # it took over once the killed one's entry expired
    from tests.conftest import FIGURES

    FIGURES.append(f"peering: standby took over and finished {took:.0f}s after the kill")
