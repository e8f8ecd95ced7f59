"""The service's own looks (`Checks`) under a burst: a bounded pool, each look once, and the
status still following the spec.

A burst of N resources schedules N looks at once (each Job's first look at
`pendingCheckSeconds`); they used to be a thread each. Here they run on a few
workers, each resource looked at once (the latest schedule wins), and a resource
broken while it waits (its image cannot be pulled) is reported at its look and
then follows an edit of its spec: the status describes the spec as it is now.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import Counter
from typing import Any

from kubernetes.client import V1ContainerState, V1ContainerStateWaiting

from bodypose_operator.builders.naming import LABEL_CONTENT_KEY, LABEL_RESOURCE
from bodypose_operator.controller.service import Checks, ExportService
from bodypose_operator.settings import Settings
from tests.support.operator_fakes import GPU_IMAGE, RecordedCluster, body, cond, pod_running


def test_a_burst_of_checks_runs_each_once_on_a_bounded_pool() -> None:
    fired: Counter[str] = Counter()
    running, peak = [0], [0]
    lock, done = threading.Lock(), threading.Event()

    def fire(namespace: str, name: str) -> None:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.005)
        with lock:
            running[0] -= 1
            fired[name] += 1
            if sum(fired.values()) == 200:
                done.set()

    checks = Checks(fire, workers=3)
    before = threading.active_count()
    for i in range(200):
        checks.schedule("ml", f"r{i}", 30.0)
    for i in range(200):  # each replaced by a sooner one: the first never fires
        checks.schedule("ml", f"r{i}", 0.01 * (i % 5))
    assert threading.active_count() - before <= 1 + 3  # the scheduler and the pool, no more
    assert done.wait(20), f"{sum(fired.values())} of 200 checks fired"
    time.sleep(0.1)
    assert fired == Counter({f"r{i}": 1 for i in range(200)})
    assert peak[0] <= 3
    assert checks._timers == {}
    checks.cancel_all()


def test_a_cancelled_or_replaced_check_never_fires() -> None:
    fired: list[str] = []
    checks = Checks(lambda namespace, name: fired.append(name), workers=2)
    checks.schedule("ml", "cancelled", 0.05)
    checks.schedule("ml", "cancelled", None)
    checks.schedule("ml", "later", 0.05)
    checks.schedule("ml", "later", 30.0)
    checks.schedule("ml", "all-cancelled", 0.05)
    checks.cancel_all()
    checks.schedule("ml", "after", 0.01)
    deadline = time.monotonic() + 5
    while not fired and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    assert fired == ["after"]
    checks.cancel_all()


class ManyCluster(RecordedCluster):
    """The in-memory cluster with many resources, each with its own Jobs."""

    def __init__(self, resources: dict[str, dict[str, Any]]) -> None:
        super().__init__()
        self.resources = resources
        self._lock = threading.Lock()  # checks run on worker threads

    def jobs_of(self, namespace: str, resource: str) -> list[Any]:
        with self._lock:
            return [j for j in self.jobs.values() if j.metadata.labels[LABEL_RESOURCE] == resource]

    def create_job(self, manifest: dict[str, Any]) -> bool:
        with self._lock:
            return super().create_job(manifest)

    def delete_job(self, namespace: str, name: str) -> None:
        with self._lock:
            self.jobs.pop(name, None)
            self.deleted.append(name)

    def get_resource(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.resources.get(name)

    def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        status = {**(self.resources[name].get("status") or {}), **patch}
        self.resources[name]["status"] = {k: v for k, v in status.items() if v is not None}


def _named(bucket: str, name: str) -> dict[str, Any]:
    resource = body(bucket)
    resource["metadata"].update(name=name, uid=f"uid-{name}")
    return resource


def _wait(predicate: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_resources_broken_together_are_each_reported_at_their_check_then_follow_an_edit(
    bucket: str,
) -> None:
    names = [f"r{i:02d}" for i in range(12)]
    cluster = ManyCluster({name: _named(bucket, name) for name in names})
    svc = ExportService(Settings(pending_check_seconds=0.3), cluster, events=lambda *a: None)  # type: ignore[arg-type]
    svc.checks.workers = 2
    try:
        for name in names:  # the burst: each Job made, then its own event's pass
            svc.reconcile(copy.deepcopy(cluster.resources[name]))
            svc.reconcile(copy.deepcopy(cluster.resources[name]))
        # Broken while they wait: no export Job's image can be pulled.
        kubelet = f'Back-off pulling image "{GPU_IMAGE}"'
        waiting = V1ContainerState(
            waiting=V1ContainerStateWaiting(reason="ImagePullBackOff", message=kubelet)
        )
        for job in list(cluster.jobs.values()):
            cluster.pods[job.metadata.name] = [pod_running(GPU_IMAGE, waiting)]

        def reason(name: str) -> str:
            return str(cond(cluster.resources[name]["status"], "Ready").get("reason"))

        _wait(lambda: all(reason(n) == "ImagePullBackOff" for n in names), 30,
              "every resource's check to report the pull failure")  # fmt: skip

        # An edit of each: a new content key, a new export Job; the old one goes.
        for name in names:
            edited = copy.deepcopy(cluster.resources[name])
            edited["spec"]["input"] = {"height": 288, "width": 384}
            edited["metadata"]["generation"] += 1
            cluster.resources[name] = edited
            svc.reconcile(copy.deepcopy(edited))
        for name in names:
            resource = cluster.resources[name]
            status = resource["status"]
            assert status["observedGeneration"] == resource["metadata"]["generation"]
            assert reason(name) != "ImagePullBackOff"  # the Job it named is gone
            jobs = cluster.jobs_of("ml", name)
            assert len(jobs) == 1
            assert jobs[0].metadata.labels[LABEL_CONTENT_KEY] == status["contentKey"]
    finally:
        svc.checks.cancel_all()
