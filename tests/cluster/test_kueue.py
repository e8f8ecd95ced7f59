"""Kueue on the local cluster is the real one: its webhooks default and validate Jobs
through the API server, its scheduler admits GPU Jobs within a ClusterQueue's quota
(per ResourceFlavor, one a node pool) and keeps the rest suspended with its reason.

Pods run in the executor from the base image. A Job's pod holds its GPU until the
test lets it finish: it connects to a TCP listener of the test (pods share the
machine's network, hack/cluster/README.md) and exits when told to.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from devcluster.controlplane import LocalCluster
from devcluster.kueue import (
    GROUP,
    QUEUE_LABEL,
    VERSION,
    Kueue,
    cluster_queue,
    condition,
    local_queue,
    resource_flavor,
    workload_of,
)
from devcluster.nodes import GPU_TAINT, POOL_LABEL, POOLS
from tests.infra.wait import wait_for

RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
BASE = "bodypose-export/base:bookworm"
A100 = next(p for p in POOLS if p.name == "a100")
T4 = next(p for p in POOLS if p.name == "t4")


@dataclass
class Queues:
    """A ClusterQueue over one flavor a GPU pool, and a LocalQueue pointing at it."""

    namespace: str
    cluster_queue: str
    local_queue: str
    flavors: dict[str, str]  # pool -> ResourceFlavor name


class Gate:
    """A TCP listener on 127.0.0.1: a pod running `Gate.command()` connects and blocks
    until `release_one()` lets the pod it accepted exit 0."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def command(self) -> list[str]:
        script = (
            "import socket, sys\n"
            f"s = socket.create_connection(('127.0.0.1', {self.port}), timeout=30)\n"
            "s.settimeout(600)\n"
            "sys.exit(0 if s.recv(2) == b'go' else 1)\n"
        )
        return ["python3", "-c", script]

    def release_one(self, timeout: float = 90) -> None:
        """Waits for a pod to connect (it runs), then lets it finish."""
        self.sock.settimeout(timeout)
        conn, _ = self.sock.accept()
        with conn:
            conn.sendall(b"go")

    def close(self) -> None:
        self.sock.close()


def custom_api(cluster: LocalCluster) -> Any:
    return client.CustomObjectsApi(cluster.api)


def batch_api(cluster: LocalCluster) -> Any:
    return client.BatchV1Api(cluster.api)


def gpu_job(name: str, queue: str, command: list[str], **job_spec: Any) -> dict[str, Any]:
    """A Job wanting one a100 GPU, as the operator's build Jobs are: the queue label,
    created suspended (Kueue unsuspends it on admission), the pool's node selector
    (which rules out the t4 flavor). No toleration of its own: the flavor brings it,
    and the GPU model's label."""
    resources = {
        "requests": {"cpu": "100m", "memory": "64Mi", "nvidia.com/gpu": "1"},
        "limits": {"nvidia.com/gpu": "1"},
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {QUEUE_LABEL: queue}},
        "spec": {
            "suspend": True,
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "nodeSelector": {POOL_LABEL: "a100"},
                    "containers": [
                        {
                            "name": "build",
                            "image": BASE,
                            "command": command,
                            "securityContext": RESTRICTED,
                            "resources": resources,
                        }
                    ],
                }
            },
            **job_spec,
        },
    }


def create_job(cluster: LocalCluster, namespace: str, manifest: dict[str, Any]) -> Any:
    return batch_api(cluster).create_namespaced_job(namespace, manifest)


def workload(cluster: LocalCluster, namespace: str, job: Any) -> dict[str, Any]:
    return wait_for(
        lambda: workload_of(cluster.api, namespace, job.metadata.uid),
        timeout=30,
        what=f"the Workload of job {job.metadata.name}",
    )


def admitted(cluster: LocalCluster, namespace: str, job: Any) -> dict[str, Any] | None:
    found = workload_of(cluster.api, namespace, job.metadata.uid)
    if found is None:
        return None
    cond = condition(found, "Admitted")
    return found if cond and cond["status"] == "True" else None


def waiting(cluster: LocalCluster, namespace: str, job: Any) -> dict[str, Any] | None:
    """The Workload once Kueue has tried it and said why it does not fit."""
    found = workload_of(cluster.api, namespace, job.metadata.uid)
    if found is None:
        return None
    cond = condition(found, "QuotaReserved")
    return found if cond and cond["status"] == "False" and cond.get("message") else None


def unsuspended(cluster: LocalCluster, namespace: str, name: str) -> Any:
    """The Job once Kueue's job reconciler has started it (a moment after admission)."""
    job = batch_api(cluster).read_namespaced_job(name, namespace)
    return job if job.spec.suspend is False else None


def job_complete(cluster: LocalCluster, namespace: str, name: str) -> Any:
    job = batch_api(cluster).read_namespaced_job(name, namespace)
    done = any(c.type == "Complete" and c.status == "True" for c in job.status.conditions or [])
    return job if done else None


def _create_queues(
    cluster: LocalCluster, namespace: str, a100_gpus: int, t4_gpus: int = 1
) -> Queues:
    suffix = uuid.uuid4().hex[:6]
    custom = custom_api(cluster)
    flavors = {pool.name: f"{pool.name}-{suffix}" for pool in (A100, T4)}
    for pool in (A100, T4):
        custom.create_cluster_custom_object(
            GROUP, VERSION, "resourceflavors", resource_flavor(pool, flavors[pool.name])
        )
    quota = {"cpu": "8", "memory": "32Gi"}
    cq = f"gpus-{suffix}"
    custom.create_cluster_custom_object(
        GROUP,
        VERSION,
        "clusterqueues",
        cluster_queue(
            cq,
            {
                flavors["a100"]: {**quota, "nvidia.com/gpu": a100_gpus},
                flavors["t4"]: {**quota, "nvidia.com/gpu": t4_gpus},
            },
        ),
    )
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "localqueues", local_queue(namespace, "gpus", cq)
    )

    def active() -> bool:
        found = custom.get_cluster_custom_object(GROUP, VERSION, "clusterqueues", cq)
        cond = condition(found, "Active")
        return bool(cond and cond["status"] == "True")

    wait_for(active, timeout=30, what=f"ClusterQueue {cq} Active")
    return Queues(namespace, cq, "gpus", flavors)


def _delete_queues(cluster: LocalCluster, queues: Queues) -> None:
    """Everything with Kueue's finalizers, while Kueue runs to remove them."""
    ns = queues.namespace
    wait = ("--wait", "--timeout=60s", "--ignore-not-found")
    cluster.kubectl("delete", "jobs", "--all", "-n", ns, "--cascade=foreground", *wait)
    cluster.kubectl("delete", "workloads.kueue.x-k8s.io", "--all", "-n", ns, *wait)
    cluster.kubectl("delete", "localqueues.kueue.x-k8s.io", "--all", "-n", ns, *wait)
    cluster.kubectl("delete", "clusterqueues.kueue.x-k8s.io", queues.cluster_queue, *wait)
    cluster.kubectl("delete", "resourceflavors.kueue.x-k8s.io", *queues.flavors.values(), *wait)


@pytest.fixture
def gpu_queues(cluster: LocalCluster, kueue: Kueue, namespace: str) -> Iterator[Queues]:
    """One a100 GPU and one t4 GPU of quota (plus cpu and memory), per flavor."""
    queues = _create_queues(cluster, namespace, a100_gpus=1)
    try:
        yield queues
    finally:
        _delete_queues(cluster, queues)


@pytest.fixture
def gate() -> Iterator[Gate]:
    opened = Gate()
    try:
        yield opened
    finally:
        opened.close()


# ---- the webhooks, through the API server ---------------------------------------------
def test_webhook_suspends_a_queued_job_and_refuses_a_bad_queue_name(
    cluster: LocalCluster, kueue: Kueue, gpu_queues: Queues
) -> None:
    ns = gpu_queues.namespace
    # Created unsuspended: Kueue's mutating webhook (mjob.kb.io) suspends it.
    manifest = gpu_job("unsuspended", "gpus", ["true"], suspend=False)
    created = create_job(cluster, ns, manifest)
    assert created.spec.suspend is True

    # A label value the API server accepts but Kueue's validating webhook does not.
    with pytest.raises(ApiException) as refused:
        create_job(cluster, ns, gpu_job("bad-queue", "Not_A_Queue", ["true"]))
    assert refused.value.status == 403
    message = json.loads(refused.value.body)["message"]
    assert message.startswith('admission webhook "vjob.kb.io" denied the request'), message
    assert QUEUE_LABEL in message, message

    # A Job without the label is not Kueue's (manageJobsWithoutQueueName: false).
    plain = gpu_job("plain", "x", ["true"], suspend=False)
    del plain["metadata"]["labels"]
    assert create_job(cluster, ns, plain).spec.suspend is False
    batch_api(cluster).delete_namespaced_job("plain", ns, propagation_policy="Background")


def test_conversion_webhook_serves_v1beta1(
    cluster: LocalCluster, kueue: Kueue, gpu_queues: Queues
) -> None:
    """The CRDs keep v1beta1 served; Kueue's /convert turns stored v1beta2 objects into it."""
    got = json.loads(
        cluster.kubectl(
            "get", f"clusterqueues.v1beta1.{GROUP}", gpu_queues.cluster_queue, "-o", "json"
        ).stdout
    )
    assert got["apiVersion"] == f"{GROUP}/v1beta1"
    flavors = got["spec"]["resourceGroups"][0]["flavors"]
    assert [f["name"] for f in flavors] == [gpu_queues.flavors["a100"], gpu_queues.flavors["t4"]]


# ---- admission within quota ---------------------------------------------------------------
def test_one_gpu_of_quota_admits_one_job_and_the_other_waits_its_turn(
    cluster: LocalCluster, kueue: Kueue, gpu_queues: Queues, gate: Gate
) -> None:
    ns = gpu_queues.namespace
    flavor = gpu_queues.flavors["a100"]
    # Both want an a100 GPU; the t4 flavor's node labels do not match their selector.
    jobs = [create_job(cluster, ns, gpu_job(f"build-{i}", "gpus", gate.command())) for i in (0, 1)]
    assert all(j.spec.suspend for j in jobs)

    first = wait_for(
        lambda: next((j for j in jobs if admitted(cluster, ns, j)), None),
        timeout=60,
        what="one of the two Jobs admitted",
    )
    second = next(j for j in jobs if j is not first)
    pending = wait_for(lambda: waiting(cluster, ns, second), timeout=60, what="Kueue's reason")

    # The admitted one: quota reserved in our flavor, unsuspended, the flavor's node
    # labels injected as its node selector and its taint tolerated.
    wl = workload(cluster, ns, first)
    assert condition(wl, "QuotaReserved")["status"] == "True"  # type: ignore[index]
    (assignment,) = wl["status"]["admission"]["podSetAssignments"]
    assert assignment["flavors"]["nvidia.com/gpu"] == flavor
    assert wl["status"]["admission"]["clusterQueue"] == gpu_queues.cluster_queue
    running = wait_for(
        lambda: unsuspended(cluster, ns, first.metadata.name), timeout=30, what="first started"
    )
    pod_spec = running.spec.template.spec
    assert pod_spec.node_selector == {
        POOL_LABEL: "a100",
        "nvidia.com/gpu.product": A100.gpu_product,
    }
    assert any(
        t.key == GPU_TAINT["key"] and t.effect == GPU_TAINT["effect"]
        for t in pod_spec.tolerations or []
    )

    # The other: still suspended, its Workload saying why in Kueue's words.
    cond = condition(pending, "QuotaReserved")
    assert cond is not None and cond["reason"] == "Pending", cond
    assert "insufficient unused quota for nvidia.com/gpu in flavor " + flavor in cond["message"]
    not_admitted = condition(pending, "Admitted")
    assert not_admitted is None or not_admitted["status"] == "False", not_admitted
    assert batch_api(cluster).read_namespaced_job(second.metadata.name, ns).spec.suspend is True

    # The first one's pod runs on an a100 node (it connected); let it finish.
    gate.release_one()
    wait_for(
        lambda: job_complete(cluster, ns, first.metadata.name), timeout=90, what="first Complete"
    )
    core: Any = client.CoreV1Api(cluster.api)
    pods = core.list_namespaced_pod(ns, label_selector=f"job-name={first.metadata.name}")
    assert [p.spec.node_name.split("-")[0] for p in pods.items] == ["a100"]

    # Its quota is free again: the second is admitted, runs and finishes.
    wait_for(lambda: admitted(cluster, ns, second), timeout=60, what="second admitted")
    wait_for(lambda: unsuspended(cluster, ns, second.metadata.name), timeout=30, what="started")
    gate.release_one()
    wait_for(
        lambda: job_complete(cluster, ns, second.metadata.name), timeout=90, what="second Complete"
    )
    finished = workload(cluster, ns, first)
    assert condition(finished, "Finished")["status"] == "True"  # type: ignore[index]


def test_zero_quota_keeps_the_job_pending_until_the_quota_is_raised(
    cluster: LocalCluster, kueue: Kueue, namespace: str
) -> None:
    queues = _create_queues(cluster, namespace, a100_gpus=0, t4_gpus=0)
    try:
        job = create_job(cluster, namespace, gpu_job("build", "gpus", ["true"]))
        pending = wait_for(lambda: waiting(cluster, namespace, job), timeout=60, what="reason")
        cond = condition(pending, "QuotaReserved")
        assert cond is not None and cond["reason"] == "Pending", cond
        assert "insufficient quota for nvidia.com/gpu in flavor" in cond["message"], cond
        assert batch_api(cluster).read_namespaced_job("build", namespace).spec.suspend is True

        # One a100 GPU of quota: Kueue admits it without anything else changing.
        custom = custom_api(cluster)
        cq = custom.get_cluster_custom_object(GROUP, VERSION, "clusterqueues", queues.cluster_queue)
        a100 = cq["spec"]["resourceGroups"][0]["flavors"][0]
        assert a100["name"] == queues.flavors["a100"]
        for resource in a100["resources"]:
            if resource["name"] == "nvidia.com/gpu":
                resource["nominalQuota"] = 1
        custom.replace_cluster_custom_object(
            GROUP, VERSION, "clusterqueues", queues.cluster_queue, cq
        )
        wait_for(lambda: admitted(cluster, namespace, job), timeout=60, what="admitted")
        wait_for(lambda: job_complete(cluster, namespace, "build"), timeout=90, what="Complete")
    finally:
        _delete_queues(cluster, queues)
