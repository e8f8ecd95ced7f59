"""GPU build Jobs that wait their turn in Kueue: the real Kueue controller, the operator from
its chart, every pod run from its image.

On a local cluster of its own (its API server writes an audit log, by which the Job
creations are counted), with Kueue v0.17.0's manager built from its Go module
(devcluster/kueue.py): one ResourceFlavor per node pool (a100, t4, cpu; node labels
`bodypose.dev/pool` and `nvidia.com/gpu.product`, the GPU taint tolerated), a
ClusterQueue `gpus` with one GPU of quota on a100 and one on t4, a ClusterQueue `cpu`
with CPU quota for the export Jobs, and a LocalQueue for each in the namespace. The
operator runs as `helm install` puts it: in its image, as the chart's ServiceAccount
with the chart's RBAC (workloads read because queueing is on), its default queue the
chart's `jobs.queueName`, and a pending deadline (10 s) far shorter than any Job waits
in its queue here.

The export Job needs no GPU: it is queued too, in the `cpu` queue (exportQueueName),
not left unqueued. On a cluster where Kueue manages every Job (its
manageJobsWithoutQueueName) an unqueued export would never be admitted, and the
export's own Queued status is then tested as well.

Targets use the onnxruntime backend (no TensorRT here) with the GPU request the
examples give them (limits nvidia.com/gpu: 1), which is what Kueue counts against the
flavors' quota; their CPU (a timed build's request equals its limit) is counted too, and
the GPU flavors carry CPU quota enough for every build (`gpu_quota`).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from devcluster.controlplane import LocalCluster
from devcluster.host import free_port
from devcluster.images import BuiltImage
from devcluster.kueue import (
    GROUP,
    VERSION,
    Kueue,
    cluster_queue,
    condition,
    local_queue,
    resource_flavor,
    start_kueue,
    workload_of,
)
from devcluster.minio import S3Server
from devcluster.nodes import POOL_LABEL, POOLS
from tests.conftest import FIGURES, SAMPLE_KEY
from tests.e2e.conftest import E2E_LATENCY_BUDGET_SET
from tests.infra.audit import job_writes
from tests.infra.cluster import fresh_namespace
from tests.infra.wait import wait_for
from tests.support.helm import CHART, helm_run

RELEASE = "bodypose"
A100, T4, CPU = (next(p for p in POOLS if p.name == n) for n in ("a100", "t4", "cpu"))
GPU_TOLERATION = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
PENDING_DEADLINE = 10  # the chart's minimum: every wait in a queue here is longer


@dataclass
class Setup:
    cluster: LocalCluster
    kueue: Kueue
    namespace: str
    flavors: dict[str, str]  # pool -> ResourceFlavor
    cluster_queues: list[str] = field(default_factory=list)

    @property
    def operator_user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:bodypose-operator"


def custom(cluster: LocalCluster) -> Any:
    return client.CustomObjectsApi(cluster.api)


def gpu_quota(gpus: int) -> dict[str, Any]:
    """A GPU flavor's quota: `gpus` GPUs, and CPUs enough for every build at once. The GPU
    targets here build with ONNX Runtime (no TensorRT here), and a timed build's CPU request
    equals its limit (builders/jobs.py `target_resources`), so a ClusterQueue that covered
    GPUs alone would admit none of them; the GPUs stay the only scarce resource."""
    return {"nvidia.com/gpu": gpus, "cpu": "8"}


def gpu_target(name: str, selector: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "nodeSelector": selector, "tolerations": GPU_TOLERATION,
            "backend": "onnxruntime", "resources": {"limits": {"nvidia.com/gpu": "1"}}}  # fmt: skip


def resource(name: str, bucket: str, targets: list[dict[str, Any]], **spec: Any) -> str:
    return yaml.safe_dump({
        "apiVersion": "bodypose.dev/v1alpha1",
        "kind": "BodyPoseExport",
        "metadata": {"name": name},
        "spec": {
            "model": {"uri": f"s3://{bucket}/models/bpnet.tlt",
                      "keySecretRef": {"name": "bpnet-key", "key": "key"}},
            "input": {"height": 224, "width": 320},
            "precision": "fp32",
            "targets": targets,
            "output": {"uri": f"s3://{bucket}/artifacts",
                       "credentialsSecretRef": {"name": "s3-credentials"}},
            "exportQueueName": "cpu",
            **spec,
        },
    })  # fmt: skip


def add_cluster_queue(setup: Setup, name: str, quotas: dict[str, dict[str, Any]]) -> None:
    api = custom(setup.cluster)
    api.create_cluster_custom_object(GROUP, VERSION, "clusterqueues", cluster_queue(name, quotas))
    setup.cluster_queues.append(name)

    def active() -> bool:
        found = api.get_cluster_custom_object(GROUP, VERSION, "clusterqueues", name)
        cond = condition(found, "Active")
        return bool(cond and cond["status"] == "True")

    wait_for(active, timeout=30, what=f"ClusterQueue {name} Active")


def add_local_queue(setup: Setup, name: str, cq: str) -> None:
    custom(setup.cluster).create_namespaced_custom_object(
        GROUP, VERSION, setup.namespace, "localqueues", local_queue(setup.namespace, name, cq)
    )


@pytest.fixture(scope="module")
def setup(
    cluster_binaries: dict[str, Path],
    kueue_binary: Path,
    images: list[BuiltImage],
    helm: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Setup]:
    """The audited cluster, Kueue, the flavors and the `cpu` queue, and the chart installed
    in one namespace, watching it, with queueing on and `gpus` as its default queue."""
    started = time.monotonic()
    local = LocalCluster(tmp_path_factory.mktemp("kueue-cluster"), cluster_binaries, audit=True)
    local.start()
    try:
        for image in images:
            local.load_image(image.archive)
        with start_kueue(local, binary=kueue_binary) as kueue, fresh_namespace(local) as ns:
            suffix = uuid.uuid4().hex[:6]
            flavors = {pool.name: f"{pool.name}-{suffix}" for pool in (A100, T4, CPU)}
            for pool in (A100, T4, CPU):
                custom(local).create_cluster_custom_object(
                    GROUP, VERSION, "resourceflavors", resource_flavor(pool, flavors[pool.name])
                )
            ready = Setup(local, kueue, ns, flavors)
            add_cluster_queue(
                ready, f"cpu-{suffix}", {flavors["cpu"]: {"cpu": "4", "memory": "32Gi"}}
            )
            add_local_queue(ready, "cpu", f"cpu-{suffix}")
            done = helm_run(
                helm, "install", RELEASE, str(CHART), "--namespace", ns, "--wait=false",
                "--set", f"watchNamespaces={{{ns}}}",
                "--set", "jobs.queueName=gpus",
                "--set", f"jobs.pendingDeadlineSeconds={PENDING_DEADLINE}",
                "--set", "jobs.pendingCheckSeconds=2", *E2E_LATENCY_BUDGET_SET,
                "--set", f"health.port={free_port()}", "--set", f"metrics.port={free_port()}",
                kubeconfig=local.kubeconfig,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            FIGURES.append(
                f"Kueue e2e set-up (audited cluster, images, Kueue, queues, chart): "
                f"{time.monotonic() - started:.0f}s"
            )
            try:
                yield ready
            finally:
                helm_run(helm, "uninstall", RELEASE, "--namespace", ns,
                         kubeconfig=local.kubeconfig)  # fmt: skip
                # What holds Kueue's finalizers goes while Kueue runs to remove them.
                wait = ("--wait", "--timeout=60s", "--ignore-not-found")
                local.kubectl("delete", "jobs", "--all", "-n", ns, "--cascade=foreground", *wait)
                local.kubectl("delete", "workloads.kueue.x-k8s.io", "--all", "-n", ns, *wait)
                local.kubectl("delete", "localqueues.kueue.x-k8s.io", "--all", "-n", ns, *wait)
                for cq in ready.cluster_queues:
                    local.kubectl("delete", "clusterqueues.kueue.x-k8s.io", cq, *wait)
                local.kubectl("delete", "resourceflavors.kueue.x-k8s.io", *flavors.values(), *wait)
    finally:
        local.stop()


@pytest.fixture
def bucket(setup: Setup, minio_endpoint: S3Server, sample_dir: Path) -> str:
    """A fresh bucket with the sample model; the key and S3 Secrets in the namespace."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    s3 = minio_endpoint.client()
    s3.create_bucket(Bucket=name)
    s3.upload_file(str(sample_dir / "bpnet_sample.tlt"), name, "models/bpnet.tlt")
    core: Any = client.CoreV1Api(setup.cluster.api)
    for secret, data in (("bpnet-key", {"key": SAMPLE_KEY}),
                         ("s3-credentials", minio_endpoint.environment())):  # fmt: skip
        try:
            core.create_namespaced_secret(
                setup.namespace, {"metadata": {"name": secret}, "stringData": data}
            )
        except ApiException as exc:
            if exc.status != 409:  # the module's first test made them
                raise
    return name


class StatusLog:
    """Every status the resource goes through, from a watch (no update is missed): per
    target its (phase, message, queue), and the export's Exported condition."""

    def __init__(self, cluster: LocalCluster, namespace: str, name: str) -> None:
        self.namespace, self.name = namespace, name
        self.api = custom(cluster)
        self.targets: dict[str, list[tuple[str, str, dict[str, Any] | None]]] = {}
        self.exported: list[tuple[str, str, dict[str, Any] | None]] = []
        self._stop = threading.Event()
        # Listed here, before the caller applies anything: the watch starts from this
        # version, so a status written while the thread is still starting (a loaded
        # machine) is an event it sees, not a state a later first list has already passed.
        listed = self.api.list_namespaced_custom_object(
            "bodypose.dev", "v1alpha1", namespace, "bodyposeexports",
            field_selector=f"metadata.name={name}",
        )  # fmt: skip
        for obj in listed.get("items") or []:
            self._record(obj.get("status") or {})
        self._version: str | None = listed["metadata"]["resourceVersion"]
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        version = self._version
        while not self._stop.is_set():
            stream = watch.Watch().stream(
                self.api.list_namespaced_custom_object, "bodypose.dev", "v1alpha1",
                self.namespace, "bodyposeexports", field_selector=f"metadata.name={self.name}",
                resource_version=version, timeout_seconds=5,
            )  # fmt: skip
            try:
                for event in stream:
                    obj = event["object"]
                    version = obj["metadata"]["resourceVersion"]
                    self._record(obj.get("status") or {})
                    if self._stop.is_set():
                        return
            except ApiException as exc:
                if exc.status != 410:  # an expired resourceVersion: list afresh
                    raise
                version = None

    def _record(self, status: dict[str, Any]) -> None:
        for target in status.get("targets") or []:
            entry = (target["phase"], target.get("message", ""), target.get("queue"))
            seen = self.targets.setdefault(target["name"], [])
            if not seen or seen[-1] != entry:
                seen.append(entry)
        exported = next((c for c in status.get("conditions") or []
                         if c["type"] == "Exported"), None)  # fmt: skip
        if exported is not None:
            entry = (exported["reason"], exported["message"], status.get("exportQueue"))
            if not self.exported or self.exported[-1] != entry:
                self.exported.append(entry)

    def phases(self, target: str) -> list[str]:
        """The target's phases in order, repeats collapsed."""
        out: list[str] = []
        for phase, _, _ in self.targets.get(target, []):
            if not out or out[-1] != phase:
                out.append(phase)
        return out

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)


def bpe(setup: Setup, name: str) -> dict[str, Any]:
    return dict(custom(setup.cluster).get_namespaced_custom_object(
        "bodypose.dev", "v1alpha1", setup.namespace, "bodyposeexports", name))  # fmt: skip


def wait_ready(setup: Setup, name: str, timeout: int = 600) -> dict[str, Any]:
    try:
        setup.cluster.kubectl("wait", "-n", setup.namespace, "--for=condition=Ready",
                              f"bpe/{name}", f"--timeout={timeout}s")  # fmt: skip
    except AssertionError:
        logs = setup.cluster.logs / "pods" / setup.namespace
        tails = {p.name: p.read_text()[-1500:] for p in logs.rglob("*.log")}
        raise AssertionError(f"{json.dumps(bpe(setup, name).get('status'))}\n{tails}") from None
    return bpe(setup, name)


def jobs_of(setup: Setup, name: str) -> list[Any]:
    batch: Any = client.BatchV1Api(setup.cluster.api)
    selector = f"bodypose.dev/export={name}"
    return list(batch.list_namespaced_job(setup.namespace, label_selector=selector).items)


def job_creations(setup: Setup) -> list[tuple[str, int]]:
    """(Job name, response code) of every Job create the operator sent (audit log)."""
    return [(w.name, w.code) for w in job_writes(setup.cluster, setup.namespace)
            if w.verb == "create" and w.user == setup.operator_user]  # fmt: skip


def admitted_workload(setup: Setup, job: Any) -> dict[str, Any]:
    wl = workload_of(setup.cluster.api, setup.namespace, job.metadata.uid)
    assert wl is not None, f"no Workload for Job {job.metadata.name}"
    return wl


def test_two_a100_builds_take_turns_the_t4_build_runs_alongside_all_admitted_by_kueue(
    setup: Setup, bucket: str
) -> None:
    gpus = f"gpus-{uuid.uuid4().hex[:6]}"
    add_cluster_queue(setup, gpus, {
        setup.flavors["a100"]: gpu_quota(1), setup.flavors["t4"]: gpu_quota(1),
    })  # fmt: skip
    add_local_queue(setup, "gpus", gpus)  # the chart's jobs.queueName
    # Two a100 targets (their pools told apart by the selector, so neither reuses the
    # other's engine), one t4. No queueName: the chart's default queue, gpus.
    targets = [
        gpu_target("a100-a", {POOL_LABEL: "a100"}),
        gpu_target("a100-b", {POOL_LABEL: "a100", "nvidia.com/gpu.product": A100.gpu_product}),
        gpu_target("t4", {POOL_LABEL: "t4"}),
    ]
    log = StatusLog(setup.cluster, setup.namespace, "turns")
    started = time.monotonic()
    try:
        setup.cluster.kubectl("apply", "-n", setup.namespace, "-f", "-",
                              input=resource("turns", bucket, targets))  # fmt: skip
        final = wait_ready(setup, "turns")
    finally:
        log.stop()
    FIGURES.append(
        f"Kueue e2e: 3 GPU targets through 2 GPUs of quota, Ready {time.monotonic() - started:.0f}s"
        " after kubectl apply"
    )
    status = final["status"]
    assert status["phase"] == "Ready" and status["readyTargets"] == "3/3"
    assert "exportQueue" not in status and all("queue" not in t for t in status["targets"])

    # The export waited in the cpu queue first, then ran.
    reasons = [reason for reason, _, _ in log.exported]
    assert reasons[0] == "Queued" and reasons[-1] == "Complete", log.exported
    assert log.exported[0][1].startswith("export: Queued in cpu: "), log.exported[0]
    assert log.exported[0][2] is not None and log.exported[0][2]["name"] == "cpu"

    # Every target: Queued, then Building, then Ready; nothing failed, nothing retried.
    for target in ("a100-a", "a100-b", "t4"):
        assert log.phases(target) == ["Queued", "Building", "Ready"], log.targets[target]
        assert all("retries" not in t for t in status["targets"])

    # The Jobs: one per stage, each created once (the audit log), each admitted by Kueue
    # (its Workload says so), none failed; Kueue's flavor still in the pod templates.
    jobs = {(j.metadata.labels["bodypose.dev/stage"], j.metadata.labels.get(
        "bodypose.dev/target")): j for j in jobs_of(setup, "turns")}  # fmt: skip
    assert set(jobs) == {("export", None), ("build", "a100-a"), ("build", "a100-b"),
                         ("build", "t4")}  # fmt: skip
    created = [(n, code) for n, code in job_creations(setup)
               if n in {j.metadata.name for j in jobs.values()}]  # fmt: skip
    assert sorted(created) == sorted((j.metadata.name, 201) for j in jobs.values()), created
    for (stage, target), job in jobs.items():
        assert job.metadata.labels["kueue.x-k8s.io/queue-name"] == (
            "cpu" if stage == "export" else "gpus"
        )
        assert not job.status.failed, (target, job.status)
        wl = admitted_workload(setup, job)
        assert condition(wl, "Admitted")["status"] == "True", (target, wl["status"])  # type: ignore[index]
        assert condition(wl, "Finished")["status"] == "True", (target, wl["status"])  # type: ignore[index]
        want = gpus if stage == "build" else setup.cluster_queues[0]
        assert wl["status"]["admission"]["clusterQueue"] == want
        if stage == "build":
            (assignment,) = wl["status"]["admission"]["podSetAssignments"]
            pool = "t4" if target == "t4" else "a100"
            assert assignment["flavors"]["nvidia.com/gpu"] == setup.flavors[pool]
            selector = job.spec.template.spec.node_selector
            gpu = T4.gpu_product if pool == "t4" else A100.gpu_product
            assert selector["nvidia.com/gpu.product"] == gpu, selector  # Kueue's, kept

    # One GPU of a100 quota: the a100 builds ran one after the other; the t4 build, with
    # quota of its own, started while the first a100 build still ran.
    a, b = jobs[("build", "a100-a")].status, jobs[("build", "a100-b")].status
    first, second = sorted((a, b), key=lambda s: s.start_time)
    assert second.start_time >= first.completion_time, (first, second)
    assert jobs[("build", "t4")].status.start_time < first.completion_time
    # The one that waited said why, in Kueue's words.
    waited = "a100-a" if a is second else "a100-b"
    flavor = setup.flavors["a100"]
    quoted = [(m, q) for phase, m, q in log.targets[waited] if phase == "Queued" and q]
    assert any(
        f"insufficient unused quota for nvidia.com/gpu in flavor {flavor}" in m
        and q["reason"] == "Pending"
        and q["condition"] == "QuotaReserved"
        for m, q in quoted
    ), log.targets[waited]
    assert quoted[-1][0].startswith(f"target {waited}: Queued in gpus: "), quoted[-1]


def test_zero_quota_leaves_the_target_queued_with_kueues_reason_until_quota_is_added(
    setup: Setup, bucket: str
) -> None:
    scarce = f"scarce-{uuid.uuid4().hex[:6]}"
    add_cluster_queue(setup, scarce, {setup.flavors["t4"]: gpu_quota(0)})
    add_local_queue(setup, "scarce", scarce)
    log = StatusLog(setup.cluster, setup.namespace, "scarce")
    try:
        manifest = resource("scarce", bucket, [gpu_target("t4", {POOL_LABEL: "t4"})],
                            queueName="scarce")  # fmt: skip
        setup.cluster.kubectl("apply", "-n", setup.namespace, "-f", "-", input=manifest)

        def queued_with_reason() -> dict[str, Any] | None:
            targets = (bpe(setup, "scarce").get("status") or {}).get("targets") or []
            queue = targets[0].get("queue") if targets else None
            return targets[0] if queue and queue.get("reason") else None

        target = wait_for(queued_with_reason, 600, "the t4 target Queued with Kueue's reason")
        assert target["phase"] == "Queued"
        assert target["queue"]["name"] == "scarce"
        assert (target["queue"]["condition"], target["queue"]["status"]) == (
            "QuotaReserved", "False")  # fmt: skip
        flavor = setup.flavors["t4"]
        assert f"insufficient quota for nvidia.com/gpu in flavor {flavor}" in target["message"]
        assert target["message"].startswith("target t4: Queued in scarce: QuotaReserved=False (")

        # Past the pending deadline it still waits: queued, not failed.
        time.sleep(PENDING_DEADLINE + 5)
        status = bpe(setup, "scarce")["status"]
        conditions = {c["type"]: c for c in status["conditions"]}
        assert status["phase"] == "Building" and status["targets"][0]["phase"] == "Queued"
        assert (conditions["Ready"]["reason"], conditions["Reconciling"]["status"]) == (
            "Queued", "True")  # fmt: skip
        assert "Stalled" not in conditions
        (job,) = [j for j in jobs_of(setup, "scarce")
                  if j.metadata.labels["bodypose.dev/stage"] == "build"]  # fmt: skip
        assert job.spec.suspend is True

        # One t4 GPU of quota: Kueue admits it, and the resource finishes.
        api = custom(setup.cluster)
        cq = api.get_cluster_custom_object(GROUP, VERSION, "clusterqueues", scarce)
        (gpu,) = [r for r in cq["spec"]["resourceGroups"][0]["flavors"][0]["resources"]
                  if r["name"] == "nvidia.com/gpu"]  # fmt: skip
        gpu["nominalQuota"] = 1
        api.replace_cluster_custom_object(GROUP, VERSION, "clusterqueues", scarce, cq)
        raised = dt.datetime.now(dt.UTC)
        final = wait_ready(setup, "scarce")
    finally:
        log.stop()
    assert final["status"]["targets"][0]["phase"] == "Ready"
    assert log.phases("t4") == ["Queued", "Building", "Ready"], log.targets["t4"]
    (job,) = [j for j in jobs_of(setup, "scarce")
              if j.metadata.labels["bodypose.dev/stage"] == "build"]  # fmt: skip
    assert job.status.start_time >= raised.replace(microsecond=0)
    assert condition(admitted_workload(setup, job), "Admitted")["status"] == "True"  # type: ignore[index]
    names = {j.metadata.name for j in jobs_of(setup, "scarce")}
    assert sorted(n for n, code in job_creations(setup) if n in names and code == 201) == sorted(
        names
    )


def test_a_missing_local_queue_is_said_in_kueues_words_stalls_and_heals_once_it_exists(
    setup: Setup, bucket: str
) -> None:
    """A queueName naming no LocalQueue: Kueue's own words reach the status at once, the
    resource is Stalled past the pending deadline (a wait no quota ends), and the queue
    created later lets Kueue admit the Job: Ready, with nothing deleted by hand."""
    name = f"lost-{uuid.uuid4().hex[:6]}"
    manifest = resource("lost", bucket, [gpu_target("t4", {POOL_LABEL: "t4"})], queueName=name)
    setup.cluster.kubectl("apply", "-n", setup.namespace, "-f", "-", input=manifest)

    def stalled() -> dict[str, Any] | None:
        status = bpe(setup, "lost").get("status") or {}
        found = {c["type"]: c for c in status.get("conditions") or []}.get("Stalled")
        return found if found and found["status"] == "True" else None

    cond = wait_for(stalled, 600, "the resource Stalled on a LocalQueue that does not exist")
    assert cond["reason"] == "Inadmissible", cond
    assert f"LocalQueue {name} doesn't exist" in cond["message"], cond
    assert f"(pending deadline {PENDING_DEADLINE}s)" in cond["message"], cond

    cq = f"found-{uuid.uuid4().hex[:6]}"
    add_cluster_queue(setup, cq, {setup.flavors["t4"]: gpu_quota(1)})
    add_local_queue(setup, name, cq)
    try:
        final = wait_ready(setup, "lost", timeout=300)
    except BaseException:
        (job,) = [j for j in jobs_of(setup, "lost")
                  if j.metadata.labels["bodypose.dev/stage"] == "build"]  # fmt: skip
        print(json.dumps(workload_of(setup.cluster.api, setup.namespace, job.metadata.uid),
                         indent=1, default=str))  # fmt: skip
        raise
    assert final["status"]["targets"][0]["phase"] == "Ready"
    assert "Stalled" not in {c["type"] for c in final["status"]["conditions"]}
