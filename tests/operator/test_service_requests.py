"""What the operator's service asks of the real API server, counted in its audit log.

The README's claims about API traffic (pods read only when a check is due, the status
patched only when it changed, a Job deleted by hand created again once, a stray Job
logged once and otherwise left alone) are claims about requests, so they are checked
in the requests the API server received (tests/infra/audit.py), not on an in-memory
fake. The service runs in this process on the `served` fixture's namespace; no pod
runs there, so a stage completes when the test writes its manifest.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pytest
from kubernetes import client

from bodypose_operator.builders.naming import LABEL_RESOURCE, LABEL_STAGE
from bodypose_operator.controller.service import ExportService
from bodypose_operator.settings import Settings
from tests.conftest import S3Endpoint
from tests.infra import audit
from tests.infra.wait import wait_for
from tests.support.operator_api import Events, Served
from tests.support.operator_fakes import body, put_manifest


def _resource(bucket: str, name: str) -> dict[str, Any]:
    resource = body(bucket)
    resource["metadata"] = {"name": name}
    return resource


def _as_event(job: Any) -> dict[str, Any]:
    """The Job as a watch event hands it to a handler: plain JSON."""
    return dict(client.ApiClient().sanitize_for_serialization(job))


def test_pods_are_read_only_when_the_pending_check_is_due(served: Served, bucket: str) -> None:
    served.apply(_resource(bucket, "due"))
    now = [dt.datetime.now(dt.UTC)]
    settings = Settings(pending_check_seconds=15, pending_deadline_seconds=600)
    svc = ExportService(settings, served.kube, events=Events(), clock=lambda: now[0])
    try:
        mark = audit.lines(served.api)
        svc.reconcile(served.get("due"))  # creates the export Job
        svc.reconcile(served.get("due"))  # a young Job: nothing to look at
        young = audit.requests(served.api, served.namespace, mark)
        assert ("create", "jobs") in {(r.verb, r.resource) for r in young}, young
        assert [r for r in young if r.resource == "pods"] == []

        # The Job as old as the check: its pods are read, once per pass.
        (job,) = served.jobs("due")
        now[0] = job.metadata.creation_timestamp + dt.timedelta(seconds=20)
        mark = audit.lines(served.api)
        svc.reconcile(served.get("due"))
        due = audit.requests(served.api, served.namespace, mark)
        assert [(r.verb, r.resource) for r in due if r.resource == "pods"] == [("list", "pods")]
    finally:
        svc.checks.cancel_all()


def test_the_status_is_patched_only_when_it_changed(
    served: Served, bucket: str, s3_endpoint: S3Endpoint
) -> None:
    def status_patches(since: int) -> list[audit.Request]:
        return [
            r
            for r in audit.requests(served.api, served.namespace, since)
            if r.resource == "bodyposeexports" and r.subresource == "status" and r.verb == "patch"
        ]

    served.apply(_resource(bucket, "still"))
    mark = audit.lines(served.api)
    key = served.reconcile("still")["contentKey"]
    assert status_patches(mark), "the first pass wrote no status"
    # The second pass sees the Job the first created (its phase in the status).
    served.reconcile("still")

    mark = audit.lines(served.api)
    for _ in range(3):
        assert served.reconcile("still")["phase"] == "Exporting"
    assert status_patches(mark) == []  # nothing changed, nothing written

    # A change (the export's manifest: its stage complete) is written once, with the build
    # Jobs that pass created: the next pass, which sees them, has nothing to add (it once
    # wrote a second patch, their phase from Pending to Building); after that, nothing again.
    prefix = f"s3://{bucket}/out/{served.namespace}/still/{key}"
    put_manifest(s3_endpoint, f"{prefix}/manifest.json", {"artifacts": []})
    mark = audit.lines(served.api)
    building = served.reconcile("still")
    assert building["phase"] == "Building"
    assert all(t.get("jobName") for t in building["targets"]), building["targets"]
    seen = served.reconcile("still")
    assert len(status_patches(mark)) == 1
    assert seen == building
    mark = audit.lines(served.api)
    for _ in range(3):
        served.reconcile("still")
    assert status_patches(mark) == []


def test_a_job_deleted_by_hand_is_created_again_once(served: Served, bucket: str) -> None:
    served.apply(_resource(bucket, "again"))
    served.reconcile("again")
    (job,) = served.jobs("again")
    name = job.metadata.name
    event = _as_event(job)
    batch: Any = client.BatchV1Api(served.api.api)
    batch.delete_namespaced_job(name, served.namespace, propagation_policy="Background")
    wait_for(lambda: not served.jobs("again"), 30, "the Job to go")

    served.service.on_job_event("DELETED", event)
    served.service.on_job_event("DELETED", event)  # a watch may say it twice
    writes = [w for w in audit.job_writes(served.api, served.namespace) if w.name == name]
    assert [(w.verb, w.code) for w in writes] == [
        ("create", 201), ("delete", 200), ("create", 201),
    ], writes  # fmt: skip
    assert [j.metadata.name for j in served.jobs("again")] == [name]
    said = f"Job {name} was deleted before it finished; creating it again"
    assert ("Warning", "JobDeleted", said) in served.events.posted


def test_a_stray_job_is_logged_once_and_costs_no_request(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    batch: Any = client.BatchV1Api(served.api.api)
    stray = batch.create_namespaced_job(served.namespace, {
        "metadata": {"name": "stray", "labels": {LABEL_RESOURCE: "nobody", LABEL_STAGE: "export"}},
        "spec": {"suspend": True, "template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": "none"}],
        }}},
    })  # fmt: skip
    event = _as_event(stray)
    mark = audit.lines(served.api)
    with caplog.at_level(logging.WARNING, logger="bodypose_operator"):
        served.service.on_job_event("ADDED", event)
        served.service.on_job_event("MODIFIED", event)
    warnings = [r.getMessage() for r in caplog.records if "stray" in r.getMessage()]
    assert warnings == [
        f"Job {served.namespace}/stray carries the operator's labels but no BodyPoseExport "
        "owns it: ignored"
    ]
    assert audit.requests(served.api, served.namespace, mark) == []
    assert served.events.posted == []
