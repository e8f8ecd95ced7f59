"""How many passes and status patches one resource costs, with its Jobs' real watch events.

On the real API server (the `served` fixture: the Job controller makes each Job's pod,
which stays Pending), a thread watches the namespace's Jobs and hands every event to
the service, as kopf's `on_job` handler does. A resource used to cost a pass per Job
event (its ADDED event, then each status write of the Job controller) and two status
patches (the pass after a Job was created said Running where the first said Pending).
Now the pass that creates a Job writes the status the next pass would write, and an
event whose Job shows what the last pass saw of it (controller/job_digest.py) costs
no pass. The counts are upper bounds on counts, never on time; after each, an edit or
a fault, and the status follows the spec as it is now.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, watch

from bodypose_operator.builders.naming import LABEL_CONTENT_KEY
from bodypose_operator.controller.job_digest import job_digest
from tests.infra import audit
from tests.infra.wait import wait_for
from tests.support.operator_api import Served
from tests.support.operator_fakes import body, cond, count_passes


class JobEvents:
    """Every Job event of the namespace, handed to the service on a thread of its own."""

    def __init__(self, served: Served) -> None:
        self.served = served
        self.seen: list[tuple[str, str]] = []  # (event type, Job name)
        self.last = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        batch: Any = client.BatchV1Api(self.served.api.api)
        while not self._stop.is_set():
            stream = watch.Watch().stream(
                batch.list_namespaced_job, self.served.namespace, timeout_seconds=5
            )
            for event in stream:
                job = event["raw_object"]
                self.served.service.on_job_event(event["type"], job)
                self.seen.append((event["type"], job["metadata"]["name"]))
                self.last = time.monotonic()
                if self._stop.is_set():
                    return

    def settle(self, quiet: float = 3.0, timeout: float = 60.0) -> None:
        """Until no Job event came for `quiet` seconds."""
        wait_for(lambda: time.monotonic() - self.last >= quiet, timeout, "the Jobs' events")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


@pytest.fixture
def watched(served: Served) -> Iterator[tuple[Served, JobEvents, list[str]]]:
    """The served namespace, its Job events handed to the service, and each pass counted
    (the resource's name, once per pass)."""
    passes = count_passes(served.service)
    events = JobEvents(served)
    try:
        yield served, events, passes
    finally:
        events.stop()


def _status_patches(served: Served, since: int) -> int:
    return sum(
        r.verb == "patch" and r.resource == "bodyposeexports" and r.subresource == "status"
        for r in audit.requests(served.api, served.namespace, since)
    )


def _started(served: Served, name: str) -> Any:
    """The export Job once the Job controller has written its status (its pod made)."""
    return wait_for(
        lambda: next((j for j in served.jobs(name) if j.status.start_time is not None), None),
        60, "the Job controller to start the Job",
    )  # fmt: skip


def _follows_the_spec(served: Served, name: str) -> dict[str, Any]:
    """The status describes the spec as it is now: this generation, its resolution, and
    the one export Job of its content key, named in the Ready condition."""
    resource = served.get(name)
    status = resource["status"]
    spec_input = resource["spec"]["input"]
    assert status["observedGeneration"] == resource["metadata"]["generation"]
    assert status["resolution"] == f"{spec_input['height']}x{spec_input['width']}"
    jobs = [j for j in served.jobs(name) if j.metadata.deletion_timestamp is None]
    assert [j.metadata.labels[LABEL_CONTENT_KEY] for j in jobs] == [status["contentKey"]]
    assert jobs[0].metadata.name in cond(status, "Ready")["message"]
    return dict(status)


def test_one_pass_and_one_status_patch_from_apply_to_the_job_started(
    watched: tuple[Served, JobEvents, list[str]], bucket: str
) -> None:
    served, events, passes = watched
    served.apply({**body(bucket), "metadata": {"name": "life"}})
    mark = audit.lines(served.api)
    first = served.reconcile("life")  # the resource's ADDED event
    _started(served, "life")
    events.settle()
    # Its ADDED event and the Job controller's writes came, and cost no pass (3.65-3.95
    # passes and 2 status patches per resource in the burst before, benchmarks/
    # operator_scale.py).
    assert len(events.seen) >= 2, events.seen
    assert len(passes) <= 1, (passes, events.seen)
    assert _status_patches(served, mark) <= 1
    assert served.get("life")["status"] == first
    # The look at the Job's pods the skipped pass would have scheduled is there.
    assert served.service.checks._timers[(served.namespace, "life")].interval == 3600
    _follows_the_spec(served, "life")

    # An edit right after the Job is made: the old Job goes, the new one is named.
    passes.clear()
    served.patch_spec("life", {"input": {"height": 256, "width": 320}})
    served.reconcile("life")  # kopf's update handler
    events.settle()
    edited = _follows_the_spec(served, "life")
    assert edited["contentKey"] != first["contentKey"]
    assert len(passes) <= 3, (passes, events.seen)  # the edit, the old Job's end


def test_a_job_deleted_or_suspended_by_hand_is_still_seen(
    watched: tuple[Served, JobEvents, list[str]], bucket: str
) -> None:
    served, events, passes = watched
    served.apply({**body(bucket), "metadata": {"name": "fault"}})
    served.reconcile("fault")
    job = _started(served, "fault")
    events.settle()
    batch: Any = client.BatchV1Api(served.api.api)

    # Deleted: its DELETED event is always news; the Job is made again, once.
    passes.clear()
    mark = audit.lines(served.api)
    batch.delete_namespaced_job(job.metadata.name, served.namespace,
                                propagation_policy="Background")  # fmt: skip
    wait_for(
        lambda: [j for j in served.jobs("fault") if j.metadata.uid != job.metadata.uid],
        60, "the Job made again",
    )  # fmt: skip
    events.settle()
    assert 1 <= len(passes) <= 3, (passes, events.seen)
    assert "JobDeleted" in served.events.reasons()
    _follows_the_spec(served, "fault")
    creates = [w for w in audit.job_writes(served.api, served.namespace) if w.verb == "create"]
    assert [w.code for w in creates] == [201, 201], creates
    assert _status_patches(served, mark) <= 1

    # Suspended by hand: a change the pass reads, so its event is a pass, and the status
    # says so.
    passes.clear()
    batch.patch_namespaced_job(job.metadata.name, served.namespace, {"spec": {"suspend": True}})
    wait_for(
        lambda: cond(served.get("fault")["status"], "Exported")["reason"] == "JobSuspended",
        60, "the status to say the Job is suspended",
    )  # fmt: skip
    assert len(passes) >= 1


def test_a_listed_job_and_its_watch_event_have_one_digest(served: Served, bucket: str) -> None:
    """The skip compares a watch event's plain JSON with the client's V1Job a pass lists:
    they must agree, or every event would still cost a pass."""
    served.apply({**body(bucket), "metadata": {"name": "digest"}})
    served.reconcile("digest")
    job = _started(served, "digest")
    as_event = client.ApiClient().sanitize_for_serialization(job)
    assert job_digest(as_event) == job_digest(job)
    suspended = {**as_event, "spec": {**as_event["spec"], "suspend": True}}
    failed = {**as_event, "status": {**as_event["status"], "failed": 1}}
    done = {**as_event, "status": {**as_event["status"], "succeeded": 1}}
    assert len({job_digest(j) for j in (as_event, suspended, failed, done)}) == 4
