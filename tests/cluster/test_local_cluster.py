"""The local cluster is a real one: scheduling on GPU pools, Jobs, RBAC, PodSecurity,
kubectl, helm, and the executor that plays the kubelet, running every pod in its image."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from devcluster.controlplane import LocalCluster
from devcluster.images import base_image
from devcluster.minio import S3Server
from tests.infra.wait import wait_for

RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
# Debian bookworm with python3 only (devcluster/images/): small pods run in it.
BASE = "bodypose-export/base:bookworm"


# The client takes plain manifests (dicts); its annotations name only its model
# classes, so the APIs are held as Any here.
def core_api(cluster: LocalCluster) -> Any:
    return client.CoreV1Api(cluster.api)


def batch_api(cluster: LocalCluster) -> Any:
    return client.BatchV1Api(cluster.api)


def container(command: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "name": "work",
        "image": BASE,
        "command": command,
        "securityContext": RESTRICTED,
        **extra,
    }


def job(name: str, pod_spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {"restartPolicy": "Never", **pod_spec},
            },
        },
    }


def only_pod(core: Any, namespace: str, job_name: str) -> Any:
    (pod,) = core.list_namespaced_pod(namespace, label_selector=f"job-name={job_name}").items
    return pod


def pod_phase(core: Any, namespace: str, name: str, phases: tuple[str, ...]) -> Any:
    pod = core.read_namespaced_pod(name, namespace)
    return pod if pod.status.phase in phases else None


# ---- the cluster and its tools ---------------------------------------------------------
def test_kubectl_lists_the_pools(cluster: LocalCluster) -> None:
    nodes = json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    by_pool: dict[str, list[dict[str, Any]]] = {}
    for node in nodes:
        by_pool.setdefault(node["metadata"]["labels"]["bodypose.dev/pool"], []).append(node)
    assert sorted(by_pool) == ["a100", "cpu", "l4", "t4"]
    a100 = by_pool["a100"][0]
    labels = a100["metadata"]["labels"]
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-80GB"
    assert (labels["nvidia.com/gpu.compute.major"], labels["nvidia.com/gpu.compute.minor"]) == (
        "8",
        "0",
    )
    assert labels["nvidia.com/gpu.memory"] == "81920" and labels["nvidia.com/gpu.count"] == "8"
    assert a100["status"]["allocatable"]["nvidia.com/gpu"] == "8"
    assert {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"} in a100["spec"][
        "taints"
    ]
    assert by_pool["t4"][0]["metadata"]["labels"]["nvidia.com/gpu.compute.minor"] == "5"
    cpu = by_pool["cpu"][0]
    assert "nvidia.com/gpu" not in cpu["status"]["allocatable"] and not cpu["spec"].get("taints")

    table = cluster.kubectl("get", "nodes", "-L", "bodypose.dev/pool").stdout
    rows = [line.split() for line in table.splitlines()[1:]]
    assert len(rows) == 6 and all(row[1] == "Ready" for row in rows), table
    assert {row[-1] for row in rows} == {"a100", "t4", "l4", "cpu"}


def test_versions_are_the_pinned_ones(cluster: LocalCluster, helm: Path) -> None:
    versions = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    assert versions["serverVersion"]["gitVersion"] == versions["clientVersion"]["gitVersion"]
    assert versions["serverVersion"]["gitVersion"].startswith("v1.")
    out = subprocess.run([helm, "version", "--short"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("v3.") and "dirty" not in out.stdout


# ---- the cluster as a whole: what make cluster-up promises -----------------------------
def test_gpu_job_is_scheduled_on_its_pool_and_run_by_the_executor(
    cluster: LocalCluster, namespace: str
) -> None:
    script = (
        "import json, os\n"
        "with open('/dev/termination-log', 'w') as f:\n"
        "    json.dump({'ok': True, 'pid': os.getpid(), 'node': os.environ['NODE']}, f)\n"
    )
    manifest = job(
        "gpu-job",
        {
            "nodeSelector": {"bodypose.dev/pool": "a100"},
            "tolerations": [GPU_TOLERATION],
            "containers": [
                container(
                    ["python3", "-c", script],
                    env=[
                        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}
                    ],
                    resources={"limits": {"nvidia.com/gpu": "1"}},
                )
            ],
        },
    )
    batch_api(cluster).create_namespaced_job(namespace, manifest)
    cluster.kubectl(
        "wait", "-n", namespace, "--for=condition=Complete", "job/gpu-job", "--timeout=90s"
    )

    pod = only_pod(core_api(cluster), namespace, "gpu-job")
    assert pod.spec.node_name.startswith("a100-")
    assert pod.status.phase == "Succeeded"
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 0 and terminated.reason == "Completed"
    result = json.loads(terminated.message)
    assert result["ok"] is True and result["node"] == pod.spec.node_name
    assert pod.status.container_statuses[0].state.running is None


def test_executor_resolves_env_and_maps_volumes(cluster: LocalCluster, namespace: str) -> None:
    core = core_api(cluster)
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "key"}, "stringData": {"key": "s3cr3t"}}
    )
    cfg = {"metadata": {"name": "cfg"}, "data": {"mode": "fp16", "x.yaml": "a: 1"}}
    core.create_namespaced_config_map(namespace, cfg)
    script = (
        "import json, os, sys\n"
        "def write_root():\n"
        "    try:\n"
        "        open('/etc/x', 'w')\n"
        "    except OSError as exc:\n"
        "        return str(exc)\n"
        "    return 'written'\n"
        "out = sys.argv[1]\n"
        "os.makedirs(os.path.dirname(out))\n"
        "open(out, 'w').write('written')\n"
        "json.dump({'argv': sys.argv[1:], 'cwd': os.getcwd(),\n"
        "           'env': {k: os.environ.get(k) for k in ('KEY', 'MODE', 'OUT', 'EXPANDED')},\n"
        "           'exists': os.path.exists(out), 'ids': [os.getuid(), os.getgid()],\n"
        "           'pid': os.getpid(), 'os': open('/etc/debian_version').read() and\n"
        "           [l for l in open('/etc/os-release') if l.startswith('PRETTY')][0][13:],\n"
        "           'root_write': write_root(),\n"
        "           'cfg': open(os.environ['CFG_DIR'] + '/x.yaml').read()},\n"
        "          open('/dev/termination-log', 'w'))\n"
    )
    manifest = job(
        "env-job",
        {
            "nodeSelector": {"bodypose.dev/pool": "cpu"},
            "volumes": [
                {"name": "scratch", "emptyDir": {}},
                {"name": "cfg", "configMap": {"name": "cfg"}},
            ],
            "containers": [
                container(
                    ["python3", "-c", script],
                    securityContext={
                        **RESTRICTED,
                        "readOnlyRootFilesystem": True,
                        "runAsGroup": 3000,
                    },
                    args=["$(OUT)/result.txt"],
                    workingDir="/scratch",
                    volumeMounts=[
                        {"name": "scratch", "mountPath": "/scratch"},
                        {"name": "cfg", "mountPath": "/etc/cfg"},
                    ],
                    env=[
                        {
                            "name": "KEY",
                            "valueFrom": {"secretKeyRef": {"name": "key", "key": "key"}},
                        },
                        {
                            "name": "MODE",
                            "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode"}},
                        },
                        {"name": "OUT", "value": "/scratch/out"},
                        {"name": "EXPANDED", "value": "$(MODE)-$$(MODE)"},
                        {"name": "CFG_DIR", "value": "/etc/cfg"},
                    ],
                )
            ],
        },
    )
    batch_api(cluster).create_namespaced_job(namespace, manifest)
    cluster.kubectl(
        "wait", "-n", namespace, "--for=condition=Complete", "job/env-job", "--timeout=90s"
    )
    pod = only_pod(core, namespace, "env-job")
    seen = json.loads(pod.status.container_statuses[0].state.terminated.message)
    # Inside the image, at the pod's own paths, as the pod's user.
    assert seen["cwd"] == "/scratch"
    assert seen["argv"] == ["/scratch/out/result.txt"] and seen["exists"] is True
    assert seen["env"] == {
        "KEY": "s3cr3t",
        "MODE": "fp16",
        "OUT": "/scratch/out",
        "EXPANDED": "fp16-$(MODE)",
    }
    assert seen["cfg"] == "a: 1"
    assert seen["ids"] == [1000, 3000] and seen["pid"] == 1
    assert seen["os"].startswith("Debian GNU/Linux 12")
    assert "Read-only file system" in seen["root_write"]
    image = cluster.images.resolve(BASE)
    assert image is not None
    assert pod.status.container_statuses[0].image_id == image.image_id
    assert image.image_id.startswith("docker.io/bodypose-export/base@sha256:")
    # The pod's work directory (its emptyDir) is gone once it ends.
    assert not list((cluster.state_dir / "pods").glob(f"{namespace}_env-job*"))


def test_failed_job_reports_exit_code_and_log_tail(cluster: LocalCluster, namespace: str) -> None:
    script = "import sys\nfor i in range(100): print('line', i)\nsys.exit(3)\n"
    manifest = job(
        "fails",
        {
            "nodeSelector": {"bodypose.dev/pool": "t4"},
            "tolerations": [GPU_TOLERATION],
            "containers": [
                container(
                    ["python3", "-c", script], terminationMessagePolicy="FallbackToLogsOnError"
                )
            ],
        },
    )
    batch_api(cluster).create_namespaced_job(namespace, manifest)
    cluster.kubectl("wait", "-n", namespace, "--for=condition=Failed", "job/fails", "--timeout=90s")
    pod = only_pod(core_api(cluster), namespace, "fails")
    assert pod.status.phase == "Failed"
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 3 and terminated.reason == "Error"
    lines = terminated.message.splitlines()
    # The kubelet's fallback: the log's last 80 lines, at most 2048 bytes.
    assert lines[-1] == "line 99" and len(lines) == 80 and "line 19\n" not in terminated.message


def test_missing_secret_waits_like_a_kubelet(cluster: LocalCluster, namespace: str) -> None:
    core = core_api(cluster)
    pod = {
        "metadata": {"name": "needs-key"},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"bodypose.dev/pool": "cpu"},
            "containers": [
                container(
                    ["python3", "-c", "import os; assert os.environ['KEY'] == 'late'"],
                    env=[
                        {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "late", "key": "k"}}}
                    ],
                )
            ],
        },
    }
    core.create_namespaced_pod(namespace, pod)

    def waiting_reason() -> str | None:
        statuses = core.read_namespaced_pod("needs-key", namespace).status.container_statuses
        state = statuses[0].state if statuses else None
        return state.waiting.reason if state and state.waiting else None

    assert wait_for(waiting_reason, what="CreateContainerConfigError") == (
        "CreateContainerConfigError"
    )
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "late"}, "stringData": {"k": "late"}}
    )
    done = wait_for(
        lambda: pod_phase(core, namespace, "needs-key", ("Succeeded", "Failed")),
        what="the pod to run once the Secret exists",
    )
    assert done.status.phase == "Succeeded"


def test_deleting_a_pod_kills_its_process(cluster: LocalCluster, namespace: str) -> None:
    core = core_api(cluster)
    pod = {
        "metadata": {"name": "sleeper"},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 5,
            "nodeSelector": {"bodypose.dev/pool": "cpu"},
            "containers": [container(["python3", "-c", "import time; time.sleep(600)"])],
        },
    }
    core.create_namespaced_pod(namespace, pod)
    running = wait_for(
        lambda: pod_phase(core, namespace, "sleeper", ("Running",)), what="the pod to run"
    )
    pid = int(running.status.container_statuses[0].container_id.removeprefix("local://"))
    tree = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    assert any("time.sleep(600)" in " ".join(p.cmdline()) for p in tree)
    core.delete_namespaced_pod("sleeper", namespace)
    wait_for(
        lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie",
        timeout=20,
        what="the process to end",
    )

    def gone() -> bool:
        try:
            core.read_namespaced_pod("sleeper", namespace)
        except ApiException as exc:
            return bool(exc.status == 404)
        return False

    wait_for(gone, what="kwok to finish the deletion")


def test_a_deleted_pod_of_a_job_with_a_failure_policy_is_replaced(
    cluster: LocalCluster, namespace: str
) -> None:
    """As a kubelet does: the deleted pod's containers stopped, the pod Failed, then removed.
    With a pod failure policy (the operator's Jobs have one) the Job controller replaces a
    deleted pod only once it is terminal; a pod removed while Running left its Job waiting
    for ever (found by the convergence campaign's delete-pod fault)."""
    core, batch = core_api(cluster), batch_api(cluster)
    spec = job("replaced", {
        "terminationGracePeriodSeconds": 2,
        "nodeSelector": {"bodypose.dev/pool": "cpu"},
        "containers": [container(["python3", "-c", "import time; time.sleep(600)"])],
    })  # fmt: skip
    spec["spec"]["backoffLimit"] = 1
    spec["spec"]["podFailurePolicy"] = {
        "rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [2]}}]
    }
    batch.create_namespaced_job(namespace, spec)

    def running() -> Any:
        pods = core.list_namespaced_pod(namespace, label_selector="job-name=replaced").items
        return next((p for p in pods if p.status.phase == "Running"), None)

    first = wait_for(running, what="the Job's pod to run")
    core.delete_namespaced_pod(first.metadata.name, namespace)

    def replaced() -> Any:
        pods = core.list_namespaced_pod(namespace, label_selector="job-name=replaced").items
        fresh = [p for p in pods if p.metadata.uid != first.metadata.uid]
        counted = batch.read_namespaced_job("replaced", namespace).status.failed == 1
        return fresh if fresh and counted else None

    wait_for(replaced, timeout=60, what="the Job to count the deleted pod and make another")


def test_active_deadline_fails_the_pod(cluster: LocalCluster, namespace: str) -> None:
    core = core_api(cluster)
    pod = {
        "metadata": {"name": "slow"},
        "spec": {
            "restartPolicy": "Never",
            "activeDeadlineSeconds": 2,
            "terminationGracePeriodSeconds": 1,
            "nodeSelector": {"bodypose.dev/pool": "cpu"},
            "containers": [container(["python3", "-c", "import time; time.sleep(600)"])],
        },
    }
    core.create_namespaced_pod(namespace, pod)
    failed = wait_for(
        lambda: pod_phase(core, namespace, "slow", ("Failed", "Succeeded")),
        timeout=30,
        what="the deadline",
    )
    assert failed.status.phase == "Failed" and failed.status.reason == "DeadlineExceeded"


def test_an_image_the_cluster_lacks_waits_in_image_pull_back_off(
    cluster: LocalCluster, namespace: str, tmp_path: Path
) -> None:
    """As on a real node: ErrImagePull, then ImagePullBackOff; once the image is
    there (loaded under that name) the pod starts."""
    core = core_api(cluster)
    missing = f"bodypose-export/not-built:{namespace}"
    pod = {
        "metadata": {"name": "no-image"},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"bodypose.dev/pool": "cpu"},
            "containers": [{**container(["python3", "-c", "print('ran')"]), "image": missing}],
        },
    }
    core.create_namespaced_pod(namespace, pod)

    def waiting() -> Any:
        statuses = core.read_namespaced_pod("no-image", namespace).status.container_statuses
        state = statuses[0].state if statuses else None
        return state.waiting if state and state.waiting else None

    seen = {wait_for(waiting, what="ErrImagePull").reason}
    deadline = time.monotonic() + 30
    while "ImagePullBackOff" not in seen and time.monotonic() < deadline:
        seen.add(waiting().reason)
        time.sleep(0.2)
    assert seen <= {"ErrImagePull", "ImagePullBackOff"} and "ImagePullBackOff" in seen
    assert waiting().message == f'Back-off pulling image "{missing}"'

    base = cluster.images.resolve(BASE)
    assert base is not None
    cluster.images.load(base_image().archive, ref=missing)
    done = wait_for(
        lambda: pod_phase(core, namespace, "no-image", ("Succeeded", "Failed")),
        what="the pod to run once its image is there",
    )
    assert done.status.phase == "Succeeded"
    assert done.status.container_statuses[0].image_id.endswith(base.digest)


def test_a_command_missing_from_the_image_is_a_start_error(
    cluster: LocalCluster, namespace: str
) -> None:
    manifest = job(
        "no-command",
        {
            "nodeSelector": {"bodypose.dev/pool": "cpu"},
            "containers": [container(["bpnet-build", "--help"])],
        },
    )
    batch_api(cluster).create_namespaced_job(namespace, manifest)
    cluster.kubectl(
        "wait", "-n", namespace, "--for=condition=Failed", "job/no-command", "--timeout=90s"
    )
    terminated = (
        only_pod(core_api(cluster), namespace, "no-command")
        .status.container_statuses[0]
        .state.terminated
    )
    assert (terminated.exit_code, terminated.reason) == (128, "StartError")
    assert terminated.message == 'exec: "bpnet-build": executable file not found in $PATH'


def test_in_cluster_clients_act_as_the_pods_service_account(
    cluster: LocalCluster, namespace: str
) -> None:
    """The token mounted where Kubernetes mounts it comes from the TokenRequest API:
    a pod that calls the API server with it is its ServiceAccount, and RBAC applies."""
    core = core_api(cluster)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "lister"}})
    rbac: Any = client.RbacAuthorizationV1Api(cluster.api)
    rbac.create_namespaced_role(namespace, {
        "metadata": {"name": "pod-lister"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
    })  # fmt: skip
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": "lister"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-lister"},
        "subjects": [{"kind": "ServiceAccount", "name": "lister", "namespace": namespace}],
    })  # fmt: skip
    script = (
        "import json, os, ssl, urllib.error, urllib.request\n"
        "sa = '/var/run/secrets/kubernetes.io/serviceaccount'\n"
        "ns = open(sa + '/namespace').read()\n"
        "ctx = ssl.create_default_context(cafile=sa + '/ca.crt')\n"
        "base = 'https://%s:%s' % (os.environ['KUBERNETES_SERVICE_HOST'],\n"
        "                          os.environ['KUBERNETES_SERVICE_PORT'])\n"
        "auth = {'Authorization': 'Bearer ' + open(sa + '/token').read()}\n"
        "def get(path):\n"
        "    try:\n"
        "        urllib.request.urlopen(urllib.request.Request(base + path, headers=auth),\n"
        "                               context=ctx)\n"
        "        return 200\n"
        "    except urllib.error.HTTPError as exc:\n"
        "        return exc.code\n"
        "json.dump({'ns': ns, 'pods': get('/api/v1/namespaces/%s/pods' % ns),\n"
        "           'secrets': get('/api/v1/namespaces/%s/secrets' % ns)},\n"
        "          open('/dev/termination-log', 'w'))\n"
    )
    manifest = job(
        "in-cluster",
        {
            "serviceAccountName": "lister",
            "nodeSelector": {"bodypose.dev/pool": "cpu"},
            "containers": [container(["python3", "-c", script])],
        },
    )
    batch_api(cluster).create_namespaced_job(namespace, manifest)
    cluster.kubectl(
        "wait", "-n", namespace, "--for=condition=Complete", "job/in-cluster", "--timeout=90s"
    )
    pod = only_pod(core, namespace, "in-cluster")
    seen = json.loads(pod.status.container_statuses[0].state.terminated.message)
    assert seen == {"ns": namespace, "pods": 200, "secrets": 403}


def test_gpu_pools_refuse_pods_without_the_toleration(
    cluster: LocalCluster, namespace: str
) -> None:
    core = core_api(cluster)
    pod = {
        "metadata": {"name": "no-toleration"},
        "spec": {
            "nodeSelector": {"bodypose.dev/pool": "a100"},
            "containers": [container(["true"])],
        },
    }
    core.create_namespaced_pod(namespace, pod)

    def unschedulable() -> bool:
        conds = core.read_namespaced_pod("no-toleration", namespace).status.conditions or []
        return any(c.type == "PodScheduled" and c.reason == "Unschedulable" for c in conds)

    wait_for(unschedulable, what="the scheduler to refuse the tainted pool")


# ---- security as a real cluster has it ----------------------------------------------------
def test_pod_security_rejects_a_privileged_pod(cluster: LocalCluster, namespace: str) -> None:
    pod = {
        "metadata": {"name": "privileged"},
        "spec": {
            "containers": [{"name": "c", "image": "x", "securityContext": {"privileged": True}}]
        },
    }
    with pytest.raises(ApiException) as info:
        core_api(cluster).create_namespaced_pod(namespace, pod)
    assert info.value.status == 403
    message = json.loads(str(info.value.body))["message"]
    assert 'violates PodSecurity "restricted:latest": privileged' in message


def test_pod_security_rejects_a_pod_running_as_root(cluster: LocalCluster, namespace: str) -> None:
    pod = {
        "metadata": {"name": "as-root"},
        "spec": {"containers": [container(["true"], securityContext={**RESTRICTED,
                                                                     "runAsUser": 0})]},
    }  # fmt: skip
    with pytest.raises(ApiException) as info:
        core_api(cluster).create_namespaced_pod(namespace, pod)
    assert info.value.status == 403
    message = json.loads(str(info.value.body))["message"]
    assert 'violates PodSecurity "restricted:latest": runAsUser=0' in message


def test_service_account_kubeconfig_is_bound_by_rbac(cluster: LocalCluster, namespace: str) -> None:
    core = core_api(cluster)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "reader"}})
    rbac: Any = client.RbacAuthorizationV1Api(cluster.api)
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
    kubeconfig = cluster.kubeconfig_for_service_account(namespace, "reader")
    as_reader: Any = client.CoreV1Api(cluster.api_client(kubeconfig))
    as_reader.list_namespaced_pod(namespace)  # allowed
    with pytest.raises(ApiException) as info:
        as_reader.list_namespaced_secret(namespace)
    assert info.value.status == 403
    assert f"system:serviceaccount:{namespace}:reader" in str(info.value.body)
    whoami = cluster.kubectl(
        "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}", kubeconfig=kubeconfig
    ).stdout
    assert whoami == f"system:serviceaccount:{namespace}:reader"
    can = cluster.kubectl(
        "auth", "can-i", "delete", "pods", "-n", namespace, kubeconfig=kubeconfig, check=False
    )
    assert can.stdout.strip() == "no"


# ---- for people: make cluster-up / cluster-down ---------------------------------------------
def test_cluster_up_status_down(cluster_binaries: dict[str, Path], tmp_path: Path) -> None:
    """What `make cluster-up` / `make cluster-down` run: a cluster and MinIO that
    outlive the command, an env.sh to source, and nothing left running after down."""
    state = tmp_path / "state"
    run = [sys.executable, "-m", "devcluster.controlplane"]
    repo = Path(__file__).resolve().parents[2]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*run, *args, "--state-dir", str(state)],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=180,
        )

    pids: list[int] = []
    up = cli("up")
    try:
        assert up.returncode == 0, up.stderr
        assert f"source {state}/env.sh" in up.stdout
        assert "a100-0" in up.stdout and "Tesla-T4" in up.stdout
        pids += [int(p.read_text()) for p in (state / "pids").iterdir()]
        assert len(pids) == 7 and all(psutil.pid_exists(p) for p in pids)
        assert cli("status").returncode == 0
        exports = dict(
            line.removeprefix("export ").replace('"', "").split("=", 1)
            for line in (state / "env.sh").read_text().splitlines()
        )
        nodes = subprocess.run(
            [cluster_binaries["kubectl"], "get", "nodes", "-o", "name"],
            env={**os.environ, "KUBECONFIG": exports["KUBECONFIG"]},
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        assert len(nodes) == 6
        s3 = S3Server(exports["AWS_ENDPOINT_URL"], exports["AWS_ACCESS_KEY_ID"],
                      exports["AWS_SECRET_ACCESS_KEY"])  # fmt: skip
        s3.client().create_bucket(Bucket="demo")
        assert [b["Name"] for b in s3.client().list_buckets()["Buckets"]] == ["demo"]
    finally:
        down = cli("down")
    assert down.returncode == 0, down.stderr
    assert not state.exists()
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids)


def test_without_the_executor_kwok_pretends_to_run_pods(
    cluster_binaries: dict[str, Path], tmp_path: Path
) -> None:
    """For scale tests where no pod should run: kwok marks pods Running and completes
    Job pods at once, whatever their image or command (kwok-pod-stages.yaml)."""
    local = LocalCluster(tmp_path / "pretend", cluster_binaries).start(executor=False)
    try:
        core: Any = client.CoreV1Api(local.api)
        core.create_namespace({"metadata": {"name": "pretend"}})
        wait_for(lambda: _has_default_sa(core, "pretend"), what="the default service account")
        manifest = job("kwok-job", {
            "nodeSelector": {"bodypose.dev/pool": "cpu"},
            "containers": [{**container(["false"]), "image": "no-such/image:1"}],
        })  # fmt: skip
        batch_api(local).create_namespaced_job("pretend", manifest)
        local.kubectl("wait", "-n", "pretend", "--for=condition=Complete", "job/kwok-job",
                      "--timeout=90s")  # fmt: skip
        pod = only_pod(core, "pretend", "kwok-job")
        # `false` in a missing image would have failed had it run; kwok's pod IPs are loopback.
        assert pod.status.phase == "Succeeded" and pod.status.pod_ip.startswith("127.")
    finally:
        local.stop()


def _has_default_sa(core: Any, namespace: str) -> bool:
    try:
        core.read_namespaced_service_account("default", namespace)
    except ApiException:
        return False
    return True
