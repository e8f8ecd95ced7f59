"""The service's own looks (`Checks`) under a burst: a bounded pool, each look once, and the
status still following the spec.

A burst of N resources schedules N looks at once (each Job's first look at
`pendingCheckSeconds`); they used to be a thread each. Here they run on a few
workers, each resource looked at once (the latest schedule wins), and a resource
broken while it waits (its image cannot be pulled) is reported at its look and
then follows an edit of its spec: the status describes the spec as it is now.

A look that falls due while passes started by events run waits for them (a
burst's Jobs first), at most `max_hold` past its time, and then still reports
what it found.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import Counter
from typing import Any

from kubernetes.client import ApiClient, V1ContainerState, V1ContainerStateWaiting

from bodypose_operator.builders.naming import LABEL_CONTENT_KEY, LABEL_RESOURCE
from bodypose_operator.controller.service import QUIET_SECONDS, Checks, ExportService
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


def test_a_due_check_waits_while_held_and_never_past_its_limit() -> None:
    fired: dict[str, float] = {}
    busy = threading.Event()
    busy.set()

    def fire(namespace: str, name: str) -> None:
        fired[name] = time.monotonic()

    held = Checks(fire, hold=lambda: 0.05 if busy.is_set() else 0.0, max_hold=60)
    held.schedule("ml", "held", 0.05)
    time.sleep(0.6)
    assert fired == {}  # due for half a second, held all along
    released = time.monotonic()
    busy.clear()
    _wait(lambda: "held" in fired, 10, "the held check to fire once the hold ended")
    assert fired["held"] >= released
    held.cancel_all()

    # A hold that never ends delays a check by `max_hold`, and no more.
    capped = Checks(fire, hold=lambda: 10.0, max_hold=0.4)
    scheduled = time.monotonic()
    capped.schedule("ml", "capped", 0.05)
    _wait(lambda: "capped" in fired, 10, "a check held past its limit to fire")
    assert fired["capped"] - scheduled >= 0.05 + 0.4
    assert capped._timers == {}
    capped.cancel_all()


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


class BlockingCluster(ManyCluster):
    """A pass over the resource `slow` waits in its Jobs' list until `go` is set."""

    def __init__(self, resources: dict[str, dict[str, Any]]) -> None:
        super().__init__(resources)
        self.go, self.inside = threading.Event(), threading.Event()

    def jobs_of(self, namespace: str, resource: str) -> list[Any]:
        if resource == "slow":
            self.inside.set()
            assert self.go.wait(30)
        return super().jobs_of(namespace, resource)


def test_a_look_due_during_an_event_pass_waits_for_it_then_reports_and_follows_an_edit(
    bucket: str,
) -> None:
    cluster = BlockingCluster({n: _named(bucket, n) for n in ("slow", "stuck")})
    svc = ExportService(Settings(pending_check_seconds=0.2), cluster, events=lambda *a: None)  # type: ignore[arg-type]
    try:
        # Its Job, and its first look in 1 s (the service's floor for that look).
        svc.reconcile(copy.deepcopy(cluster.resources["stuck"]))
        (job,) = cluster.jobs_of("ml", "stuck")
        kubelet = f'Back-off pulling image "{GPU_IMAGE}"'
        waiting = V1ContainerState(
            waiting=V1ContainerStateWaiting(reason="ImagePullBackOff", message=kubelet)
        )
        cluster.pods[job.metadata.name] = [pod_running(GPU_IMAGE, waiting)]

        def reason() -> str:
            return str(cond(cluster.resources["stuck"]["status"], "Ready").get("reason"))

        # Another resource's event pass starts before the look is due, and runs on.
        slow = threading.Thread(
            target=svc.reconcile, args=(copy.deepcopy(cluster.resources["slow"]),)
        )
        slow.start()
        assert cluster.inside.wait(10)
        time.sleep(2.0)  # the look fell due a second ago
        assert svc.hold_checks() == QUIET_SECONDS
        assert reason() != "ImagePullBackOff"  # held: the event pass goes first
        cluster.go.set()
        slow.join(10)
        _wait(lambda: reason() == "ImagePullBackOff", 10, "the held look to report the pull")
        _wait(lambda: svc.hold_checks() == 0.0, 10, "the quiet after the last event pass")

        # A Job event that is no news starts no pass, so holds no look.
        as_seen = dict(ApiClient().sanitize_for_serialization(job))
        as_seen["metadata"]["namespace"] = "ml"
        as_seen["metadata"]["ownerReferences"] = [{
            "apiVersion": "bodypose.dev/v1alpha1", "kind": "BodyPoseExport",
            "name": "stuck", "uid": "uid-stuck", "controller": True,
        }]  # fmt: skip
        svc.on_job_event("MODIFIED", as_seen)
        assert svc.hold_checks() == 0.0

        # The spec edited: the status follows it, the Job that could not pull is gone.
        edited = copy.deepcopy(cluster.resources["stuck"])
        edited["spec"]["input"] = {"height": 288, "width": 384}
        edited["metadata"]["generation"] += 1
        cluster.resources["stuck"] = edited
        svc.reconcile(copy.deepcopy(edited))
        status = cluster.resources["stuck"]["status"]
        assert status["observedGeneration"] == edited["metadata"]["generation"]
        assert reason() != "ImagePullBackOff"
        (new,) = cluster.jobs_of("ml", "stuck")
        assert new.metadata.labels[LABEL_CONTENT_KEY] == status["contentKey"]
    finally:
        cluster.go.set()
        svc.checks.cancel_all()
