"""The event-driven service: which trigger reconciles what, what it reads, when it looks again.

Against a real S3 server and the in-memory cluster of tests/support/operator_fakes.py, extended
with the resource reads and status patches the service makes: the timers it schedules and
the cases a real cluster cannot be made to produce on cue. What it asks of the API server
(pods read only when due, the status patched only when it changed, a Job deleted by hand
created again once, a stray Job logged once) is counted in the real API server's audit log:
tests/operator/test_service_requests.py.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pytest
from kubernetes.client import (
    ApiClient,
    V1ContainerState,
    V1ContainerStateWaiting,
    V1JobStatus,
)

from bodypose_operator.controller.act import status_patch
from bodypose_operator.controller.service import ExportService
from bodypose_operator.settings import Settings
from tests.conftest import S3Endpoint
from tests.support.operator_fakes import (
    GPU_IMAGE,
    RecordedCluster,
    body,
    count_passes,
    pod_running,
    put_manifest,
)


class ServedCluster(RecordedCluster):
    """The in-memory cluster, with one resource the service reads and patches."""

    def __init__(self, resource: dict[str, Any]) -> None:
        super().__init__()
        self.resource: dict[str, Any] | None = resource
        self.patches: list[dict[str, Any]] = []
        self.pod_reads = 0

    def pods_of(self, namespace: str, job: str) -> list[Any]:
        self.pod_reads += 1
        return super().pods_of(namespace, job)

    def get_resource(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.resource

    def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        assert self.resource is not None
        self.patches.append(patch)
        status = dict(self.resource.get("status") or {})
        status.update(patch)
        self.resource["status"] = {k: v for k, v in status.items() if v is not None}


class Events:
    def __init__(self) -> None:
        self.posted: list[tuple[str, str, str]] = []

    def __call__(self, body: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self.posted.append((type_, reason, message))


def service(cluster: ServedCluster, settings: Settings) -> tuple[ExportService, Events]:
    events = Events()
    return ExportService(settings, cluster, events=events), events  # type: ignore[arg-type]


def job_event(cluster: ServedCluster, name: str) -> dict[str, Any]:
    """The Job as a watch event carries it: a plain dict with the owner reference and the
    Job's status (the service skips an event whose Job shows what its last pass saw)."""
    job = cluster.jobs[name]
    assert cluster.resource is not None
    meta = cluster.resource["metadata"]
    return {
        "metadata": {
            "name": name, "namespace": meta["namespace"], "uid": f"uid-{name}",
            "labels": job.metadata.labels,
            "ownerReferences": [{"apiVersion": "bodypose.dev/v1alpha1", "kind": "BodyPoseExport",
                                 "name": meta["name"], "uid": meta["uid"], "controller": True}],
        },
        "status": ApiClient().sanitize_for_serialization(job.status) or {},
    }  # fmt: skip


def test_a_young_job_costs_no_pod_read_and_one_check_is_scheduled(bucket: str) -> None:
    cluster = ServedCluster(body(bucket))
    created = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    now = [created]
    settings = Settings(pending_check_seconds=15, pending_deadline_seconds=600)
    svc = ExportService(settings, cluster, events=Events(), clock=lambda: now[0])  # type: ignore[arg-type]
    first = svc.reconcile(cluster.resource)  # type: ignore[arg-type]
    assert first is not None and first.requeue_after is None  # nothing to wait for yet
    job = cluster.job("export")
    job.metadata.creation_timestamp = created
    second = svc.reconcile(cluster.resource)  # type: ignore[arg-type]
    assert second is not None and cluster.pod_reads == 0
    # The first look at pending_check_seconds of the Job's age, on the timer it set.
    assert second.requeue_after == 15.0
    assert list(svc.checks._timers) == [("ml", "demo")]  # exactly one, replaced each pass
    assert svc.checks._timers[("ml", "demo")].interval == 15.0

    # Once the check is due the pods are read; the next look is just past the deadline.
    now[0] = created + dt.timedelta(seconds=20)
    later = svc.reconcile(cluster.resource)  # type: ignore[arg-type]
    assert later is not None and cluster.pod_reads == 1
    assert later.requeue_after == 600 - 20 + 1
    assert svc.checks._timers[("ml", "demo")].interval == 581.0

    # A Job whose pod runs needs no look but the safety resync's (not at rest: Exporting).
    job.status = V1JobStatus(active=1, ready=1)
    running = svc.reconcile(cluster.resource)  # type: ignore[arg-type]
    assert running is not None and running.requeue_after is None and cluster.pod_reads == 1
    assert svc.checks._timers[("ml", "demo")].interval == settings.resync_seconds == 600
    svc.checks.cancel_all()


def test_status_patch_removes_what_the_new_status_lacks() -> None:
    old = {"phase": "Building", "artifacts": {"etlt": {}}, "readyTargets": "0/2"}
    new = {"phase": "Exporting", "readyTargets": "0/2"}
    assert status_patch(old, new) == {"phase": "Exporting", "artifacts": None}
    assert status_patch(new, dict(new)) is None


def test_a_job_event_reconciles_its_owner(bucket: str, s3_endpoint: S3Endpoint) -> None:
    cluster = ServedCluster(body(bucket))
    svc, events = service(cluster, Settings())
    svc.reconcile(cluster.resource)  # type: ignore[arg-type]
    export = cluster.job("export").metadata.name
    assert cluster.resource is not None
    key = cluster.resource["status"]["contentKey"]
    put_manifest(s3_endpoint, f"s3://{bucket}/out/ml/demo/{key}/manifest.json", {"artifacts": []})
    cluster.jobs[export].status = V1JobStatus(succeeded=1)
    svc.on_job_event("MODIFIED", job_event(cluster, export))
    assert cluster.resource["status"]["phase"] == "Building"
    assert {j.metadata.labels.get("bodypose.dev/target") for j in cluster.jobs.values()} == {
        None, "a100", "cpu",
    }  # fmt: skip
    assert "BuildStarted" in [r for _, r, _ in events.posted]
    svc.checks.cancel_all()


def test_events_of_a_deleted_owners_jobs_change_nothing(bucket: str) -> None:
    cluster = ServedCluster(body(bucket))
    svc, events = service(cluster, Settings())
    svc.reconcile(cluster.resource)  # type: ignore[arg-type]
    export = cluster.job("export").metadata.name
    event = job_event(cluster, export)
    posted = len(events.posted)
    cluster.resource = None  # deleted; its Jobs' last events still arrive
    del cluster.jobs[export]
    svc.on_job_event("MODIFIED", event)
    svc.on_job_event("DELETED", event)
    assert cluster.jobs == {} and len(events.posted) == posted
    svc.checks.cancel_all()


def test_an_image_pull_failure_is_seen_at_the_check(bucket: str, s3_endpoint: S3Endpoint) -> None:
    cluster = ServedCluster(body(bucket))
    svc, _ = service(cluster, Settings(pending_check_seconds=15))
    svc.reconcile(cluster.resource)  # type: ignore[arg-type]
    job = cluster.job("export")
    kubelet = f'Back-off pulling image "{GPU_IMAGE}"'
    cluster.pods[job.metadata.name] = [
        pod_running(GPU_IMAGE, V1ContainerState(waiting=V1ContainerStateWaiting(
            reason="ImagePullBackOff", message=kubelet)))
    ]  # fmt: skip
    job.metadata.creation_timestamp -= dt.timedelta(seconds=16)
    svc.check("ml", "demo")  # what the scheduled timer calls
    assert cluster.resource is not None
    ready = next(c for c in cluster.resource["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "ImagePullBackOff"
    assert ready["message"].startswith(f"export: image {GPU_IMAGE} cannot be pulled")
    svc.checks.cancel_all()


def test_a_scheduled_check_runs_in_the_context_it_was_scheduled_from() -> None:
    """kopf finds its event queue through context variables: a check on a timer thread
    must carry the scheduling handler's context, or its events cannot be posted."""
    import contextvars
    import threading

    from bodypose_operator.controller.service import Checks

    marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker")
    seen: list[str] = []
    fired = threading.Event()

    def fire(namespace: str, name: str) -> None:
        seen.append(f"{namespace}/{name}:{marker.get('unset')}")
        fired.set()

    checks = Checks(fire)
    marker.set("from the handler")
    checks.schedule("ml", "demo", 0.05)
    assert fired.wait(5)
    assert seen == ["ml/demo:from the handler"]


def test_an_api_server_that_does_not_answer_is_a_warning_and_a_later_look(
    bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    import urllib3.exceptions

    class Away(ServedCluster):
        def get_resource(self, namespace: str, name: str) -> dict[str, Any] | None:
            raise urllib3.exceptions.MaxRetryError(None, "/apis", "connection refused")  # type: ignore[arg-type]

        def jobs_of(self, namespace: str, resource: str) -> list[Any]:
            raise urllib3.exceptions.MaxRetryError(None, "/apis", "connection refused")  # type: ignore[arg-type]

    cluster = Away(body(bucket))
    svc, _ = service(cluster, Settings())
    scheduled: list[float | None] = []
    svc.checks.schedule = lambda ns, name, seconds: scheduled.append(seconds)  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="bodypose_operator"):
        svc.check("ml", "demo")  # a scheduled check
        assert svc.reconcile(body(bucket)) is None  # a handler's pass
    assert scheduled == [5.0, 5.0]
    lines = [r.getMessage() for r in caplog.records]
    assert (
        lines == ["ml/demo: the API server did not answer (MaxRetryError); looking again in 5s"] * 2
    )
    assert not any(r.exc_info for r in caplog.records)  # no trace for an outage


def test_a_resources_own_events_reconcile_what_no_pass_has_seen_and_nothing_else(
    bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The resource's watch events (controller/handlers.py): its first sight and each spec
    no pass saw are reconciled; our own status patches' events and a listing of what this
    process already reconciled are not; a pass that raises is tried again; a deleted one is
    forgotten, and one created again under the same name reconciled afresh."""
    cluster = ServedCluster(body(bucket))
    svc, _ = service(cluster, Settings(pending_check_seconds=3600, resync_seconds=7200))
    passes = count_passes(svc, "generation")
    resource = cluster.resource
    assert resource is not None
    svc.on_resource_event("ADDED", resource)
    assert passes == [3] and resource["status"]["observedGeneration"] == 3
    # The MODIFIED event of that status patch, a label added, the listing of a restart
    # of the watch: nothing this process has not reconciled.
    svc.on_resource_event("MODIFIED", resource)
    resource["metadata"]["labels"] = {"team": "vision"}
    svc.on_resource_event("MODIFIED", resource)
    svc.on_resource_event(None, resource)
    assert passes == [3]

    # An edit of the spec moves the generation: reconciled once, then quiet again.
    resource["spec"]["targets"] = [{"name": "cpu", "backend": "onnxruntime"}]
    resource["metadata"]["generation"] = 4
    svc.on_resource_event("MODIFIED", resource)
    svc.on_resource_event("MODIFIED", resource)
    assert passes == [3, 4] and resource["status"]["observedGeneration"] == 4
    # A status someone wiped is written again.
    del resource["status"]
    svc.on_resource_event("MODIFIED", resource)
    assert passes == [3, 4, 4] and resource["status"]["phase"] == "Exporting"

    # A resource going (another's finalizer holds it) is left to its DELETED event.
    resource["metadata"]["generation"] = 5
    resource["metadata"]["deletionTimestamp"] = "2026-12-06T19:00:00Z"
    svc.on_resource_event("MODIFIED", resource)
    assert passes == [3, 4, 4]
    del resource["metadata"]["deletionTimestamp"]

    # A pass that raises (not the API server being away) is tried again after a pause.
    def broken(namespace: str, name: str) -> list[Any]:
        raise RuntimeError("a bug")

    cluster.jobs_of = broken  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="bodypose_operator"):
        svc.on_resource_event("MODIFIED", resource)
    assert "ml/demo: the pass failed; looking again in 5s" in caplog.text
    assert svc.checks._timers[("ml", "demo")].interval == 5.0
    # Its looks fail too: each is traced and followed by another, twice as late, up to
    # five minutes (a look may be the only trigger left: it must not be the last).
    cluster.resource = resource
    intervals = []
    for _ in range(8):
        svc.check("ml", "demo")
        intervals.append(svc.checks._timers[("ml", "demo")].interval)
    assert intervals == [10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0, 300.0]
    # Mended: the next look succeeds and ends the row; a later failure starts at 5 s.
    del cluster.jobs_of
    svc.check("ml", "demo")
    assert svc._failures == {} and resource["status"]["observedGeneration"] == 5
    assert svc.checks._timers[("ml", "demo")].interval > 3000  # its pending Job's look: no retry
    cluster.jobs_of = broken  # type: ignore[method-assign]
    svc.check("ml", "demo")
    assert svc.checks._timers[("ml", "demo")].interval == 5.0

    # Deleted: forgotten; the same name created again (a new uid) is reconciled on sight.
    svc.on_resource_event("DELETED", resource)
    assert ("ml", "demo") not in svc.checks._timers and svc._failures == {}
    del cluster.jobs_of
    again = body(bucket)
    again["metadata"]["uid"] = "5678-uid"
    cluster.resource = again
    svc.on_resource_event(None, again)
    assert passes[-1] == 3 and again["status"]["observedGeneration"] == 3
    svc.checks.cancel_all()
