"""The local control plane is a real cluster: scheduling, Jobs, RBAC, PodSecurity, tools."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.infra.controlplane import LocalCluster

RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def wait_for(predicate: Any, timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise TimeoutError(f"timed out waiting for {what}")


def test_kubectl_lists_the_pools(cluster: LocalCluster, kubectl: Path) -> None:
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    nodes = json.loads(
        subprocess.run(
            [kubectl, "get", "nodes", "-o", "json"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )["items"]
    pools = {n["metadata"]["labels"]["bodypose.dev/pool"] for n in nodes}
    assert pools == {"a100", "t4", "cpu"}
    a100 = next(n for n in nodes if n["metadata"]["name"] == "a100-0")
    assert a100["metadata"]["labels"]["nvidia.com/gpu.compute.major"] == "8"
    assert a100["status"]["allocatable"]["nvidia.com/gpu"] == "8"
    assert a100["spec"]["taints"][0]["key"] == "nvidia.com/gpu"

    def ready_table() -> str | None:
        out = subprocess.run([kubectl, "get", "nodes"], env=env, capture_output=True, text=True)
        return out.stdout if " Ready " in out.stdout else None

    table = wait_for(ready_table, what="nodes Ready")
    assert "t4-1" in table and "cpu-0" in table


def test_job_runs_on_its_gpu_pool(cluster: LocalCluster, namespace: str) -> None:
    script = (
        "import json, os; open(os.environ['BODYPOSE_TERMINATION_LOG'], 'w')"
        ".write(json.dumps({'ok': True, 'node': os.environ.get('NODE', '?')}))"
    )
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "gpu-job", "namespace": namespace},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {"bodypose.dev/executor": "local"}},
                "spec": {
                    "restartPolicy": "Never",
                    "nodeSelector": {"bodypose.dev/pool": "t4"},
                    "tolerations": [
                        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
                    ],
                    "containers": [
                        {
                            "name": "work",
                            "image": "local/python",
                            "command": ["python", "-c", script],
                            "resources": {"limits": {"nvidia.com/gpu": "1"}},
                            "securityContext": RESTRICTED,
                        }
                    ],
                },
            },
        },
    }
    api = cluster.api_client()
    client.BatchV1Api(api).create_namespaced_job(namespace, job)
    wait_for(
        lambda: (
            client.BatchV1Api(api)
            .read_namespaced_job(job["metadata"]["name"], namespace)
            .status.succeeded
        ),
        timeout=90,
        what="the Job to complete",
    )
    (pod,) = (
        client.CoreV1Api(api)
        .list_namespaced_pod(namespace, label_selector="job-name=gpu-job")
        .items
    )
    assert pod.spec.node_name.startswith("t4-")
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 0
    assert json.loads(terminated.message)["ok"] is True


def test_unschedulable_without_toleration(cluster: LocalCluster, namespace: str) -> None:
    pod = {
        "metadata": {"name": "no-toleration", "labels": {"bodypose.dev/executor": "local"}},
        "spec": {
            "nodeSelector": {"bodypose.dev/pool": "a100"},
            "containers": [
                {"name": "c", "image": "x", "command": ["true"], "securityContext": RESTRICTED}
            ],
        },
    }
    core = client.CoreV1Api(cluster.api_client())
    core.create_namespaced_pod(namespace, pod)

    def unschedulable() -> bool:
        conds = core.read_namespaced_pod("no-toleration", namespace).status.conditions or []
        return any(c.type == "PodScheduled" and c.reason == "Unschedulable" for c in conds)

    wait_for(unschedulable, what="the scheduler to refuse the tainted pool")


def test_pod_security_rejects_a_privileged_pod(cluster: LocalCluster, namespace: str) -> None:
    pod = {
        "metadata": {"name": "privileged"},
        "spec": {
            "containers": [{"name": "c", "image": "x", "securityContext": {"privileged": True}}]
        },
    }
    with pytest.raises(ApiException) as info:
        client.CoreV1Api(cluster.api_client()).create_namespaced_pod(namespace, pod)
    assert info.value.status == 403
    assert "violates PodSecurity" in info.value.body


def test_service_account_kubeconfig_is_bound_by_rbac(cluster: LocalCluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api_client())
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "reader"}})
    rbac = client.RbacAuthorizationV1Api(cluster.api_client())
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "pod-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "reader"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "pod-reader",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        },
    )
    as_sa = client.CoreV1Api(
        cluster.api_client(cluster.kubeconfig_for_service_account(namespace, "reader"))
    )
    as_sa.list_namespaced_pod(namespace)  # allowed
    with pytest.raises(ApiException) as info:
        as_sa.list_namespaced_secret(namespace)
    assert info.value.status == 403


def test_helm_runs(cluster: LocalCluster) -> None:
    out = subprocess.run(
        [cluster.bins["helm"], "version", "--short"], capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("v3.")
