"""A stage's state, from its facts: how a Job's status, pods and manifest are read.

The export and each target's build are one Job each; `stage_state` says where
that stage is (Pending, Queued, Running, Ready or Failed), and why, from its
manifest (written last: its stage is complete), its Job's own status
(controller/job_status.py), its pods' report (controller/pods.py: the
termination message, a container that could not start, an image that cannot be
pulled, a pod no node takes) and its Kueue Workload (controller/queues.py), and
counts the attempts the Job's back-off retried. `next_look` says when a stage
that waits on time rather than on an event is due a look. Pure functions.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

from bodypose_contract.termination import TerminationMessage
from bodypose_operator.api.queues import QUEUE_LABEL
from bodypose_operator.controller.facts import StageFacts
from bodypose_operator.controller.job_status import (
    job_age,
    job_queue,
    job_started,
    job_state,
    job_suspended,
)
from bodypose_operator.controller.queues import queue_wait, stuck
from bodypose_operator.settings import Settings


@dataclass(frozen=True)
class StageState:
    phase: str  # Pending | Queued | Running | Ready | Failed
    reason: str
    message: str
    job: str | None = None
    manifest: dict[str, Any] | None = None
    #: Pods of the Job that failed before this state (the Job's retries, backoffLimit).
    retries: int = 0
    #: Why the last failed pod failed ("reason: message"), when its pods were read.
    last_failure: str | None = None
    #: While Queued: the status' QueueStatus (controller/queues.py).
    queue: dict[str, Any] | None = None


def _queued(what: str, queue: str, name: str, stage: StageFacts | None = None) -> StageState:
    """A Job waiting in its Kueue queue, as its Workload (if read) says."""
    workload = stage.workload if stage is not None else None
    unread = stage.workload_unread if stage is not None else None
    wait = queue_wait(queue, name, workload, unread)
    return StageState("Queued", "Queued", f"{what}: {wait.message}", name, queue=wait.queue)


def _stuck_since(stage: StageFacts, job: Any) -> tuple[Any, dt.datetime] | None:
    """A queued Job's wait that no quota ends (queues.stuck) and since when, or None."""
    found = stuck(stage.workload, stage.workload_unread)
    if found is None:
        return None
    since = found.since or job.metadata.creation_timestamp
    return (found, since) if since is not None else None


def _queued_or_stuck(
    stage: StageFacts, what: str, queue: str, name: str, settings: Settings, now: dt.datetime
) -> StageState:
    """Queued, in Kueue's words; Failed once a wait no quota ends (a Workload deactivated,
    inadmissible, or none at all) has lasted past the pending deadline."""
    state = _queued(what, queue, name, stage)
    found = _stuck_since(stage, stage.job)
    if found is None:
        return state
    why, since = found
    waited = (now - since).total_seconds()
    if waited <= settings.pending_deadline_seconds:
        return state
    return StageState(
        "Failed", why.reason,
        f"{what}: Job {name} waited {waited:.0f}s in queue {queue} (pending deadline "
        f"{settings.pending_deadline_seconds}s): {why.message}", name, queue=state.queue,
    )  # fmt: skip


def created(what: str, manifest: dict[str, Any]) -> StageState:
    """The state of a stage whose Job this pass creates."""
    name = manifest["metadata"]["name"]
    queue = manifest["metadata"]["labels"].get(QUEUE_LABEL)
    if queue is not None:
        return _queued(what, queue, name)
    return _waiting_to_start(what, name)


def _waiting_to_start(what: str, name: str) -> StageState:
    message = f"{what}: Job created ({name}), waiting to start"
    return StageState("Pending", "JobPending", message, name)


# ----- one stage, from its facts ------------------------------------------------------


def stage_state(stage: StageFacts, what: str, settings: Settings, now: dt.datetime) -> StageState:
    """The export's or one target's state, from its manifest, its Job and its pods.

    A Job retries a failed pod with the Job controller's back-off, up to `backoffLimit`
    (the chart's jobs.backoffLimit); the exporter's permanent exits (bad input, a gate
    refused) fail the Job at once (builders/jobs.py, the pod failure policy). Each retry is
    in the state: how many attempts failed, and why the last one did."""
    state = _state_of_job(stage, what, settings, now)
    failed = int(getattr(stage.job.status, "failed", 0) or 0) if stage.job is not None else 0
    if failed == 0:
        return state
    allowed = settings.backoff_limit + 1
    last = stage.report.last_failure if stage.report is not None else None
    why = f"{last[0]}: {last[1]}" if last is not None else None
    if why is None and failed == stage.seen_retries:
        why = stage.seen_failure  # no attempt failed since the status said why
    if state.phase == "Failed":
        note = f" (after {failed} failed attempts of {allowed})" if failed > 1 else ""
        return dataclasses.replace(
            state, message=state.message + note, retries=failed - 1, last_failure=why
        )
    note = f" (attempt {failed} of {allowed} failed" + (f": {why}" if why else "") + "; retried)"
    if state.phase == "Ready":
        note = ""
    return dataclasses.replace(
        state, message=state.message + note, retries=failed, last_failure=why
    )


def _state_of_job(stage: StageFacts, what: str, settings: Settings, now: dt.datetime) -> StageState:
    if stage.manifest is not None:
        name = stage.job.metadata.name if stage.job is not None else None
        return StageState("Ready", "Complete", f"{what} complete", name, stage.manifest)
    job = stage.job
    if job is None:
        return StageState("Pending", "JobPending", f"{what}: Job created, waiting to start")
    name = job.metadata.name
    state = job_state(job)
    report = stage.report
    if state == "Failed":
        if report and report.start_failure:
            return _start_failure(what, report.start_failure, name)
        result: TerminationMessage = (report.result if report else None) or {}
        reason = str(result.get("reason") or "JobFailed")
        message = str(result.get("message") or f"Job {name} failed")
        return StageState("Failed", reason, f"{what}: {message}", name)
    if state == "Succeeded":
        # The manifest is written last; a succeeded Job without it lost its upload.
        return StageState(
            "Failed", "ManifestMissing", f"{what}: Job {name} succeeded but wrote no manifest", name
        )
    if job_suspended(job):
        queue = job_queue(job)
        if queue is not None:
            return _queued_or_stuck(stage, what, queue, name, settings, now)
        return StageState(
            "Pending", "JobSuspended",
            f"{what}: Job {name} is suspended (spec.suspend); it starts when resumed", name,
        )  # fmt: skip
    if report is None:
        return _started_or_waiting(job, what, name)
    if report.start_failure is not None:
        return _start_failure(what, report.start_failure, name)
    if report.waiting_reason == "CreateContainerConfigError":
        detail = report.waiting_message or "container config error"
        return StageState("Failed", "ConfigError", f"{what}: {detail}", name)
    past_deadline = job_age(job, now) > settings.pending_deadline_seconds
    pull = report.image_pull
    if pull is not None:
        message = f"{what}: image {pull.image} cannot be pulled ({pull.reason})"
        if pull.message:
            message += f": {pull.message}"
        if past_deadline:
            return StageState("Failed", "ImagePullBackOff", message, name)
        return StageState("Running", pull.reason, message, name)
    if report.unschedulable_message is not None:
        if past_deadline:
            return StageState(
                "Failed",
                "NoMatchingNodes",
                f"{what}: no node can run Job {name} after "
                f"{settings.pending_deadline_seconds}s: {report.unschedulable_message}",
                name,
            )
        return StageState(
            "Running", "Unschedulable", f"{what}: {report.unschedulable_message}", name
        )
    return StageState("Running", "JobRunning", f"{what}: Job {name} running", name)


def _started_or_waiting(job: Any, what: str, name: str) -> StageState:
    """A Job whose pods were not read: running once a pod is ready, else young (its pods
    are read from `pending_check_seconds` on) and waiting to start, as the pass that made
    it said (`created`): the pass of its next event has nothing to patch. A queued Job
    the pass made said Queued, not waiting: once Kueue admits it, it is Running, as
    before, never back to Pending (Queued, Building, Ready: tests/e2e/test_kueue_queues.py)."""
    if not job_started(job) and job_queue(job) is None:
        return _waiting_to_start(what, name)
    return StageState("Running", "JobRunning", f"{what}: Job {name} running", name)


def _start_failure(what: str, failure: Any, name: str) -> StageState:
    return StageState(
        "Failed",
        "ContainerCannotRun",
        f"{what}: the container of image {failure.image} could not start "
        f"(exit code {failure.exit_code}): {failure.message}",
        name,
    )


def next_look(stage: StageFacts, settings: Settings, now: dt.datetime, phase: str) -> float | None:
    """When a Job that has not started is due a look no event will trigger: at
    `pending_check_seconds` (its pods read once), then just past the pending deadline
    (where it fails); a retry that has not started, every `pending_check_seconds` until
    it starts, ends or its stage is `phase` Failed. None for a stage that is complete,
    or whose Job runs or ended."""
    job = stage.job
    if stage.manifest is not None or job is None or job_state(job) != "Active":
        return None
    if job_suspended(job) and job_queue(job) is not None:
        # Waiting its turn: Kueue's events report it. A wait no quota ends runs against
        # the pending deadline, which no event announces.
        found = _stuck_since(stage, job)
        if found is None:
            return None
        left = settings.pending_deadline_seconds - (now - found[1]).total_seconds()
        return left + 1 if left >= 0 else None
    if job_started(job) or job_suspended(job):
        return None  # running; or suspended by hand
    age = job_age(job, now)
    if age < settings.pending_check_seconds:
        return settings.pending_check_seconds - age
    if age < settings.pending_deadline_seconds:
        return settings.pending_deadline_seconds - age + 1
    if job.status.failed and phase != "Failed":
        # A retry past the Job's own deadline (its age counts from its first start): the
        # pass that saw the attempt fail read a new pod before the scheduler had said
        # whether any node can run it, and no Job event follows when none can (`make soak
        # SEED=120710`, step 29: a Failed target's pending pod deleted, its replacement
        # unschedulable, the status "running" until the safety resync).
        return max(settings.pending_check_seconds, 1.0)
    return None
