"""Kueue queues: queued Jobs (label, suspended), Queued in Kueue's words, no deadline while
a Job waits, preemption, the Workload events mapped to their resource, the queue names.

Against a real S3 server and the in-memory cluster of tests/support/operator_fakes.py,
whose Workloads are the dicts Kueue v0.17 writes (conditions as in
apis/kueue/v1beta2/workload_types.go, the messages its scheduler gives);
tests/e2e/test_kueue_queues.py runs the same against the real Kueue.
"""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import V1JobStatus
from pydantic import ValidationError

from bodypose_operator.api.queues import QUEUE_LABEL
from bodypose_operator.api.v1alpha1 import BodyPoseExportSpec
from bodypose_operator.builders.jobs import build_export_job, build_target_job
from bodypose_operator.controller.observe import NOT_WATCHING
from bodypose_operator.controller.queues import queue_wait
from bodypose_operator.controller.reconcile import reconcile
from bodypose_operator.controller.service import ExportService
from bodypose_operator.settings import Settings
from tests.conftest import S3Endpoint
from tests.support.operator_fakes import (
    RecordedCluster,
    body,
    cond,
    put_manifest,
    put_target_manifest,
    resource,
    spec_dict,
)

ROOT = Path(__file__).resolve().parents[2]
PENDING = (
    "couldn't assign flavors to pod set main: insufficient unused quota for nvidia.com/gpu in "
    "flavor a100, 1 more needed"
)


def workload(job: str, *conditions: dict[str, Any]) -> dict[str, Any]:
    """A Workload as Kueue makes it for the Job `job` (owned by it)."""
    return {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "Workload",
        "metadata": {
            "name": f"job-{job}-1a2b3",
            "namespace": "ml",
            "labels": {"kueue.x-k8s.io/job-uid": f"uid-{job}"},
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": job,
                    "uid": f"uid-{job}",
                    "controller": True,
                }
            ],
        },
        "status": {"conditions": list(conditions)},
    }


def condition(type_: str, status: str, reason: str, message: str) -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": "2026-12-01T10:00:00Z"}  # fmt: skip


def pending(job: str) -> dict[str, Any]:
    return workload(job, condition("QuotaReserved", "False", "Pending", PENDING))


def admitted(job: str) -> dict[str, Any]:
    return workload(
        job,
        condition("QuotaReserved", "True", "QuotaReserved", "Quota reserved in ClusterQueue gpus"),
        condition("Admitted", "True", "Admitted", "The workload is admitted"),
    )


def queued_body(bucket: str, **spec: Any) -> dict[str, Any]:
    return body(bucket, queueName="gpus", exportQueueName="cpu", **spec)


# ---- the Jobs ---------------------------------------------------------------------------
def test_a_queued_job_is_labelled_and_created_suspended_and_the_export_may_queue_apart() -> None:
    spec = BodyPoseExportSpec.model_validate(spec_dict(queueName="gpus", exportQueueName="cpu"))
    res = resource(spec_dict())
    export = build_export_job(res, spec, "k" * 16, Settings())
    build = build_target_job(res, spec, spec.targets[0], "k" * 16, Settings(), "i" * 16)
    assert export["metadata"]["labels"][QUEUE_LABEL] == "cpu"
    assert build["metadata"]["labels"][QUEUE_LABEL] == "gpus"
    for job in (export, build):
        assert job["spec"]["suspend"] is True
        # Kueue manages the Job, not its pods: the label stays off the pod template.
        assert QUEUE_LABEL not in job["spec"]["template"]["metadata"]["labels"]

    # The operator's default (the chart's jobs.queueName) where the spec names none; the
    # export in the resource's queue when it names no queue of its own.
    plain = BodyPoseExportSpec.model_validate(spec_dict())
    default = Settings(queue_name="team")
    assert build_export_job(res, plain, "k" * 16, default)["metadata"]["labels"][QUEUE_LABEL] == (
        "team"
    )
    one = BodyPoseExportSpec.model_validate(spec_dict(queueName="gpus"))
    assert build_export_job(res, one, "k" * 16, default)["metadata"]["labels"][QUEUE_LABEL] == (
        "gpus"
    )
    # No queue anywhere: today's Jobs, unsuspended and unlabelled.
    unqueued = build_target_job(res, plain, plain.targets[0], "k" * 16, Settings(), "i" * 16)
    assert QUEUE_LABEL not in unqueued["metadata"]["labels"] and "suspend" not in unqueued["spec"]


def test_the_queue_is_no_part_of_the_content_key_but_a_job_belongs_to_its_queue(
    bucket: str,
) -> None:
    plain, queued = RecordedCluster(), RecordedCluster()
    settings = Settings(pending_check_seconds=0)
    a = reconcile(body(bucket), plain, settings)  # type: ignore[arg-type]
    b = reconcile(queued_body(bucket), queued, settings)  # type: ignore[arg-type]
    # The artifacts are the same (one content key) ...
    assert a.status["contentKey"] == b.status["contentKey"]
    # ... but each Job is named from what it runs, its queue included: a resource moved to
    # another queue has its unfinished Jobs replaced by ones waiting in the queue it names.
    assert list(plain.jobs) != list(queued.jobs)
    assert [n.rsplit("-", 1)[0] for n in plain.jobs] == [n.rsplit("-", 1)[0] for n in queued.jobs]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("queueName", "GPU_Queue"),
        ("queueName", "-gpus"),
        ("queueName", ""),
        ("queueName", "q" * 64),
        ("exportQueueName", "cpu queue"),
    ],
)
def test_a_queue_name_kueue_would_refuse_is_refused_with_the_admission_sentence(
    field: str, value: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        BodyPoseExportSpec.model_validate(spec_dict(**{field: value}))
    assert (
        f"{field} must name a Kueue LocalQueue: lowercase letters, digits, '-' and '.', "
        "starting and ending with a letter or digit, at most 63 characters"
    ) in str(refused.value)


def test_queue_names_kueue_takes_are_taken() -> None:
    for name in ("gpus", "team-a.gpus", "q" * 63, "0"):
        assert BodyPoseExportSpec.model_validate(spec_dict(queueName=name)).queueName == name


def test_the_chart_default_queue_is_checked_at_start_and_turns_queueing_on() -> None:
    assert not Settings.from_env({}).queueing
    assert Settings.from_env({"BODYPOSE_QUEUE_NAME": "gpus"}).queue_name == "gpus"
    assert Settings.from_env({"BODYPOSE_QUEUE_NAME": "gpus"}).queueing
    assert Settings.from_env({"BODYPOSE_KUEUE": "true"}).queueing
    assert (
        Settings.from_env({"BODYPOSE_KUEUE": "false", "BODYPOSE_QUEUE_NAME": ""}).queue_name is None
    )
    with pytest.raises(ValueError) as refused:
        Settings.from_env({"BODYPOSE_QUEUE_NAME": "GPUs"})
    assert str(refused.value) == (
        "BODYPOSE_QUEUE_NAME (jobs.queueName) must name a Kueue LocalQueue: lowercase letters, "
        "digits, '-' and '.', starting and ending with a letter or digit, at most 63 "
        "characters: got 'GPUs'"
    )


def test_the_operator_never_updates_a_job() -> None:
    """What Kueue writes into an admitted Job (its flavor's node selector and tolerations,
    the unsuspension) is never written back: the operator's code creates, reads and deletes
    Jobs, nothing else (no patch, replace or status call on the batch API)."""
    allowed = {"create_namespaced_job", "delete_namespaced_job", "list_namespaced_job",
               "read_namespaced_job"}  # fmt: skip
    used: set[str] = set()
    for path in (ROOT / "operator" / "bodypose_operator").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr.endswith(
                ("_namespaced_job", "_namespaced_job_status", "_job_for_all_namespaces")
            ):
                used.add(node.attr)
    assert used <= allowed, used - allowed
    from bodypose_operator.controller.cluster import Cluster

    job_calls = {n for n in vars(Cluster) if "job" in n}
    assert job_calls == {"jobs_of", "create_job", "delete_job"}


# ---- Queued, in Kueue's words -----------------------------------------------------------
def test_a_waiting_export_is_queued_with_kueues_reason_and_no_deadline_runs(
    bucket: str,
) -> None:
    cluster = RecordedCluster()
    # Pods are looked at at once and the deadline is zero: neither applies to a queued Job.
    settings = Settings(pending_check_seconds=0, pending_deadline_seconds=0, kueue=True)
    first = reconcile(queued_body(bucket), cluster, settings)  # type: ignore[arg-type]
    job = cluster.job("export")
    name = job.metadata.name
    assert first.status["phase"] == "Exporting"
    exported = cond(first.status, "Exported")
    assert (exported["status"], exported["reason"]) == ("Unknown", "Queued")
    assert exported["message"] == (
        f"export: Queued in cpu: Job {name} is suspended until Kueue admits it; waiting for "
        "Kueue to make the Job's Workload"
    )
    assert first.status["exportQueue"] == {"name": "cpu", "jobName": name}
    assert cond(first.status, "Reconciling")["status"] == "True"
    assert first.jobs_running == 0  # waiting, not running

    cluster.workloads[job.metadata.uid] = workload(
        name, condition("QuotaReserved", "False", "Pending", PENDING.replace("a100", "cpu"))
    )
    job.metadata.creation_timestamp -= dt.timedelta(hours=2)  # long past any deadline
    later = reconcile(queued_body(bucket), cluster, settings)  # type: ignore[arg-type]
    ready = cond(later.status, "Ready")
    assert (later.status["phase"], ready["reason"]) == ("Exporting", "Queued")
    assert ready["message"] == (
        f"export: Queued in cpu: QuotaReserved=False (Pending): {PENDING.replace('a100', 'cpu')}"
    )
    assert later.status["exportQueue"] == {
        "name": "cpu", "jobName": name, "workload": f"job-{name}-1a2b3",
        "condition": "QuotaReserved", "status": "False", "reason": "Pending",
        "message": PENDING.replace("a100", "cpu"),
    }  # fmt: skip
    assert later.requeue_after is None  # Kueue's events say when it moves: no timer
    assert cluster.pods == {} and cluster.deleted == []
    assert cond(later.status, "Reconciling")["status"] == "True"
    assert "Stalled" not in {c["type"] for c in later.status["conditions"]}


def _exported(endpoint: S3Endpoint, status: dict[str, Any], bucket: str) -> str:
    prefix = f"s3://{bucket}/out/ml/demo/{status['contentKey']}"
    put_manifest(endpoint, f"{prefix}/manifest.json", {"artifacts": []})
    return prefix


def test_builds_wait_their_turn_then_run_and_a_preempted_one_is_queued_again_not_failed(
    bucket: str, s3_endpoint: S3Endpoint
) -> None:
    cluster = RecordedCluster()
    settings = Settings(pending_check_seconds=0, pending_deadline_seconds=600, kueue=True)
    first = reconcile(queued_body(bucket), cluster, settings)  # type: ignore[arg-type]
    prefix = _exported(s3_endpoint, first.status, bucket)
    building = reconcile(queued_body(bucket), cluster, settings)  # type: ignore[arg-type]
    targets = {t["name"]: t for t in building.status["targets"]}
    assert {t["phase"] for t in targets.values()} == {"Queued"}
    assert targets["a100"]["queue"]["name"] == "gpus"
    assert "exportQueue" not in building.status  # the export is done
    ready = cond(building.status, "Ready")
    assert (ready["reason"], ready["message"]) == ("Queued", "0/2 targets ready, 2 queued")

    a100, cpu = cluster.job("build", "a100"), cluster.job("build", "cpu")
    cluster.workloads[a100.metadata.uid] = admitted(a100.metadata.name)
    cluster.workloads[cpu.metadata.uid] = pending(cpu.metadata.name)
    waiting = reconcile(queued_body(bucket), cluster, settings)  # type: ignore[arg-type]
    targets = {t["name"]: t for t in waiting.status["targets"]}
    assert targets["a100"]["message"] == (
        f"target a100: Queued in gpus: Admitted=True (Admitted): The workload is admitted; "
        f"Kueue starts Job {a100.metadata.name}"
    )
    assert targets["cpu"]["message"] == (
        f"target cpu: Queued in gpus: QuotaReserved=False (Pending): {PENDING}"
    )
    assert targets["cpu"]["queue"]["reason"] == "Pending"

    # Kueue admits it (unsuspended) before its pod starts, and while the Job is young
    # (its pods not read yet): Building, never back to Pending (the e2e's Queued,
    # Building, Ready; a Job the pass made unqueued would say "waiting to start" here).
    a100.spec.suspend = False
    young = Settings(pending_check_seconds=600, pending_deadline_seconds=600, kueue=True)
    unsuspended = reconcile(queued_body(bucket), cluster, young)  # type: ignore[arg-type]
    targets = {t["name"]: t for t in unsuspended.status["targets"]}
    assert targets["a100"]["phase"] == "Building", targets["a100"]

    # Kueue starts the a100 Job after it waited an hour in the queue: the pending clock
    # starts now (status.startTime), not when the Job was made.
    a100.metadata.creation_timestamp -= dt.timedelta(hours=1)
    a100.spec.suspend = False
    a100.status = V1JobStatus(active=1, start_time=dt.datetime.now(dt.UTC))
    started = reconcile(queued_body(bucket), cluster, settings)  # type: ignore[arg-type]
    targets = {t["name"]: t for t in started.status["targets"]}
    assert targets["a100"]["phase"] == "Building" and "queue" not in targets["a100"]
    assert started.requeue_after is not None and started.requeue_after > 500

    # Kueue preempts it: suspended again, its pod deleted (not counted as failed by the
    # Job controller). Queued again, with the eviction named; no retry, no new Job.
    a100.spec.suspend = True
    a100.status = V1JobStatus(active=0)
    cluster.workloads[a100.metadata.uid] = workload(
        a100.metadata.name,
        condition("QuotaReserved", "False", "Pending", PENDING),
        condition("Evicted", "True", "Preempted", "Preempted to accommodate a workload "
                  "(UID: 7, JobUID: 8) due to prioritization in the ClusterQueue"),
    )  # fmt: skip
    again = reconcile(queued_body(bucket), cluster, settings)  # type: ignore[arg-type]
    targets = {t["name"]: t for t in again.status["targets"]}
    assert targets["a100"]["phase"] == "Queued" and "retries" not in targets["a100"]
    assert targets["a100"]["message"] == (
        f"target a100: Queued in gpus: QuotaReserved=False (Pending): {PENDING}; evicted "
        "before: Evicted=True (Preempted): Preempted to accommodate a workload (UID: 7, "
        "JobUID: 8) due to prioritization in the ClusterQueue"
    )
    assert len(cluster.jobs) == 3 and cluster.deleted == []
    assert again.status["phase"] == "Building"

    # Admitted again, run to the end: Ready.
    a100.spec.suspend = cpu.spec.suspend = False
    for target in ("a100", "cpu"):
        put_target_manifest(s3_endpoint, prefix, body("any"), target, {"artifacts": []})
    done = reconcile(queued_body(bucket), cluster, settings)  # type: ignore[arg-type]
    assert done.status["phase"] == "Ready"
    assert all("queue" not in t for t in done.status["targets"])


def test_without_queueing_a_queued_job_is_reported_without_reading_workloads(
    bucket: str,
) -> None:
    """A resource names a queue but the operator runs without kueue.enabled (no RBAC for
    Workloads): its Jobs still queue, the status says why Kueue's reason is missing."""
    cluster = RecordedCluster()
    out = reconcile(queued_body(bucket), cluster, Settings(pending_check_seconds=0))  # type: ignore[arg-type]
    reconcile(queued_body(bucket), cluster, Settings(pending_check_seconds=0))  # type: ignore[arg-type]
    assert cluster.workload_reads == 0
    name = cluster.job("export").metadata.name
    again = reconcile(queued_body(bucket), cluster, Settings(pending_check_seconds=0))  # type: ignore[arg-type]
    assert cond(again.status, "Exported")["message"] == (
        f"export: Queued in cpu: Job {name} is suspended until Kueue admits it; {NOT_WATCHING}"
    )
    assert out.status["phase"] == "Exporting"


def test_workloads_that_cannot_be_read_are_named_in_the_status(bucket: str) -> None:
    cluster = RecordedCluster()
    cluster.workloads_unavailable = (
        "Kueue's Workload API (kueue.x-k8s.io v1beta2/v1beta1) is not served: is Kueue installed?"
    )
    settings = Settings(pending_check_seconds=0, kueue=True)
    reconcile(queued_body(bucket), cluster, settings)  # type: ignore[arg-type]
    out = reconcile(queued_body(bucket), cluster, settings)  # type: ignore[arg-type]
    message = cond(out.status, "Exported")["message"]
    assert message.endswith(
        "suspended until Kueue admits it; Kueue's Workload API "
        "(kueue.x-k8s.io v1beta2/v1beta1) is not served: is Kueue installed?"
    )
    assert out.status["phase"] == "Exporting"  # waiting, not failed


def test_a_job_suspended_by_hand_waits_without_a_deadline(bucket: str) -> None:
    cluster = RecordedCluster()
    settings = Settings(pending_check_seconds=0, pending_deadline_seconds=0)
    reconcile(body(bucket), cluster, settings)  # type: ignore[arg-type]
    job = cluster.job("export")
    job.spec.suspend = True
    job.metadata.creation_timestamp -= dt.timedelta(hours=1)
    out = reconcile(body(bucket), cluster, settings)  # type: ignore[arg-type]
    exported = cond(out.status, "Exported")
    assert (exported["reason"], out.requeue_after) == ("JobSuspended", None)
    assert exported["message"] == (
        f"export: Job {job.metadata.name} is suspended (spec.suspend); it starts when resumed"
    )


@pytest.mark.parametrize(
    ("conditions", "message"),
    [
        ([], "Queued in gpus: Workload job-b-1a2b3 not yet considered by Kueue"),
        (
            [condition("QuotaReserved", "True", "QuotaReserved", "Quota reserved in ClusterQueue "
                       "gpus"),
             condition("Admitted", "False", "NoChecks", "The workload has pending checks")],
            "Queued in gpus: QuotaReserved=True (QuotaReserved): Quota reserved in ClusterQueue "
            "gpus; Admitted=False (NoChecks): The workload has pending checks",
        ),
        (
            [condition("QuotaReserved", "False", "Inadmissible",
                       "LocalQueue gpus doesn't exist")],
            "Queued in gpus: QuotaReserved=False (Inadmissible): LocalQueue gpus doesn't exist",
        ),
    ],
)  # fmt: skip
def test_queue_wait_quotes_the_workloads_condition(
    conditions: list[dict[str, Any]], message: str
) -> None:
    assert queue_wait("gpus", "b", workload("b", *conditions), None).message == message


# ---- Workload events --------------------------------------------------------------------
class WatchedCluster(RecordedCluster):
    """The in-memory cluster with the reads the service makes for a Workload's event."""

    def __init__(self, resource_body: dict[str, Any]) -> None:
        super().__init__()
        self.resource = resource_body
        self.job_reads: list[str] = []
        self.passes = 0

    def get_resource(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.passes += 1
        return self.resource if name == self.resource["metadata"]["name"] else None

    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.job_reads.append(name)
        if name not in self.manifests:
            return {"metadata": {"name": name, "uid": f"uid-{name}", "labels": {}}}
        manifest = self.manifests[name]
        return {"metadata": {**manifest["metadata"], "uid": f"uid-{name}"}}

    def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        status = {**(self.resource.get("status") or {}), **patch}
        self.resource["status"] = {k: v for k, v in status.items() if v is not None}


def test_a_workload_event_reconciles_the_resource_of_its_job_and_ignores_others(
    bucket: str,
) -> None:
    cluster = WatchedCluster(queued_body(bucket))
    svc = ExportService(
        Settings(kueue=True),
        cluster,
        events=lambda *a: None,  # type: ignore[arg-type]
    )
    svc.reconcile(cluster.resource)
    name = cluster.job("export").metadata.name
    cluster.workloads[f"uid-{name}"] = workload(name, condition("QuotaReserved", "False",
                                                                "Pending", PENDING))  # fmt: skip
    before = cluster.passes
    # The Job not seen in a watch event yet: read once, then known.
    svc.on_workload_event("MODIFIED", workload(name))
    svc.on_workload_event("MODIFIED", workload(name))
    assert cluster.job_reads == [name] and cluster.passes == before + 2
    assert cluster.resource["status"]["exportQueue"]["reason"] == "Pending"

    # Someone else's Job in the namespace: read once, then ignored for good.
    svc.on_workload_event("ADDED", workload("theirs"))
    svc.on_workload_event("MODIFIED", workload("theirs"))
    assert cluster.job_reads == [name, "theirs"] and cluster.passes == before + 2

    # A Job seen in the Jobs' watch (the initial listing too) costs no read at all.
    owner = {"apiVersion": "bodypose.dev/v1alpha1", "kind": "BodyPoseExport", "name": "demo",
             "uid": "1234-uid", "controller": True}  # fmt: skip
    other = {"metadata": {"name": "seen", "namespace": "ml", "uid": "uid-seen",
                          "ownerReferences": [owner]}}  # fmt: skip
    svc.remember_job(other)
    svc.on_workload_event("MODIFIED", workload("seen"))
    assert cluster.job_reads == [name, "theirs"] and cluster.passes == before + 3
    # A Workload without a Job owner (another kind of workload) is not ours to look at.
    svc.on_workload_event("ADDED", {"metadata": {"name": "w", "namespace": "ml"}})
    assert cluster.passes == before + 3
    svc.checks.cancel_all()


def test_the_workload_watch_is_registered_only_with_queueing_on() -> None:
    import subprocess
    import sys

    script = (
        "import kopf\n"
        "from bodypose_operator.controller import handlers\n"
        "print(sorted(str(h.selector.group) for h in "
        "kopf.get_default_registry()._watching.get_all_handlers()))\n"
    )
    # bodypose.dev: the resources' own watch events (controller/handlers.py).
    both = "['batch', 'bodypose.dev', 'kueue.x-k8s.io']"
    cases = [({}, "['batch', 'bodypose.dev']"), ({"BODYPOSE_KUEUE": "true"}, both),
             ({"BODYPOSE_QUEUE_NAME": "gpus"}, both)]  # fmt: skip
    for env, groups in cases:
        done = subprocess.run([sys.executable, "-c", script], env={"PATH": "/usr/bin", **env},
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == groups, (env, done.stdout)


def test_a_workload_event_while_the_api_server_is_away_is_a_warning_and_no_verdict(
    bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    import urllib3.exceptions

    class Away(WatchedCluster):
        away = True

        def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
            if self.away:
                raise urllib3.exceptions.MaxRetryError(None, "/apis", "refused")  # type: ignore[arg-type]
            return super().get_job(namespace, name)

    cluster = Away(queued_body(bucket))
    svc = ExportService(
        Settings(kueue=True),
        cluster,
        events=lambda *a: None,  # type: ignore[arg-type]
    )
    svc.reconcile(cluster.resource)
    name = cluster.job("export").metadata.name
    before = cluster.passes
    with caplog.at_level(logging.WARNING, logger="bodypose_operator"):
        svc.on_workload_event("MODIFIED", workload(name))
    assert cluster.passes == before
    assert [r.getMessage() for r in caplog.records] == [
        f"ml: the API server did not answer (MaxRetryError) for the Job of Workload "
        f"job-{name}-1a2b3"
    ]
    cluster.away = False  # back: the next event finds the Job, and its resource
    svc.on_workload_event("MODIFIED", workload(name))
    assert cluster.passes == before + 1
    svc.checks.cancel_all()


# ---- A wait no quota ends: never silent, Stalled past the pending deadline -------------
def _waiting_export(bucket: str, cluster: RecordedCluster, settings: Settings) -> Any:
    reconcile(queued_body(bucket), cluster, settings)  # type: ignore[arg-type]
    return cluster.job("export")


@pytest.mark.parametrize(
    ("wl", "reason", "words"),
    [
        # A LocalQueue that does not exist, a ClusterQueue stopped: Kueue's words.
        (lambda job: workload(job, condition(
            "QuotaReserved", "False", "Inadmissible", "LocalQueue cpu doesn't exist")),
         "Inadmissible", "QuotaReserved=False (Inadmissible): LocalQueue cpu doesn't exist"),
        (lambda job: workload(job, condition(
            "QuotaReserved", "False", "Inadmissible", "ClusterQueue cpu-cq is inactive")),
         "Inadmissible", "QuotaReserved=False (Inadmissible): ClusterQueue cpu-cq is inactive"),
        # Deactivated (spec.active false): Kueue evicted it and will not admit it.
        (lambda job: {**workload(job, condition(
            "Evicted", "True", "Deactivated", "The workload is deactivated")),
            "spec": {"active": False}},
         "WorkloadDeactivated", "is deactivated (spec.active false); Kueue admits it only once "
         "it is active again: Evicted=True (Deactivated): The workload is deactivated"),
    ],
)  # fmt: skip
def test_a_wait_no_quota_ends_is_said_in_kueues_words_and_stalls_past_the_deadline(
    bucket: str, wl: Any, reason: str, words: str
) -> None:
    cluster = RecordedCluster()
    settings = Settings(pending_check_seconds=0, pending_deadline_seconds=600, kueue=True)
    job = _waiting_export(bucket, cluster, settings)
    found = wl(job.metadata.name)
    found["status"]["conditions"][0]["lastTransitionTime"] = (
        dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30)
    ).isoformat()
    cluster.workloads[job.metadata.uid] = found
    waiting = reconcile(queued_body(bucket), cluster, settings)  # type: ignore[arg-type]
    exported = cond(waiting.status, "Exported")
    assert exported["reason"] == "Queued" and words in exported["message"]
    assert waiting.status["phase"] == "Exporting"
    # No event announces the deadline: a look is scheduled for just past it.
    assert waiting.requeue_after is not None and 560 < waiting.requeue_after < 575

    found["status"]["conditions"][0]["lastTransitionTime"] = (
        dt.datetime.now(dt.UTC) - dt.timedelta(seconds=700)
    ).isoformat()
    late = reconcile(queued_body(bucket), cluster, settings)  # type: ignore[arg-type]
    assert late.status["phase"] == "Failed"
    stalled = cond(late.status, "Stalled")
    assert stalled["reason"] == reason and words in stalled["message"]
    assert "(pending deadline 600s)" in stalled["message"]


def test_a_queue_with_no_kueue_to_serve_it_stalls_past_the_deadline(bucket: str) -> None:
    """A queueName and no Kueue (or an operator not watching Workloads): the Job stays
    suspended with no Workload; said at once, Stalled past the deadline."""
    cluster = RecordedCluster()
    settings = Settings(pending_check_seconds=0, pending_deadline_seconds=600)
    job = _waiting_export(bucket, cluster, settings)
    job.metadata.creation_timestamp -= dt.timedelta(seconds=700)
    late = reconcile(queued_body(bucket), cluster, settings)  # type: ignore[arg-type]
    stalled = cond(late.status, "Stalled")
    assert stalled["reason"] == "NoWorkload"
    assert (
        "Kueue's reason is not read: the operator runs without kueue.enabled"
        in (stalled["message"])
    )


def test_waiting_for_quota_never_stalls(bucket: str) -> None:
    cluster = RecordedCluster()
    settings = Settings(pending_check_seconds=0, pending_deadline_seconds=60, kueue=True)
    job = _waiting_export(bucket, cluster, settings)
    cluster.workloads[job.metadata.uid] = pending(job.metadata.name)  # transitioned long ago
    job.metadata.creation_timestamp -= dt.timedelta(hours=5)
    out = reconcile(queued_body(bucket), cluster, settings)  # type: ignore[arg-type]
    assert out.status["phase"] == "Exporting" and out.requeue_after is None
