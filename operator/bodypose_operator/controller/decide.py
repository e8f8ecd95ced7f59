"""Decide: from the facts to the desired Jobs and the status. A pure function.

No I/O here: `decide(body, facts, settings)` returns what to create and delete,
which content-index entries to write, the status, the events worth telling the
user, and when to look again if a wait is on time rather than on an event (a
Job that has not started: first at `pending_check_seconds`, to report an image
that cannot be pulled or a pool with no room, then at the pending deadline, to
fail it). Level-triggered: the same facts always give the same decision, so a
restarted operator neither duplicates a Job (names are deterministic) nor loses
a result (results live in S3 manifests and pod termination messages).

A decision is made in steps, each a pure function of the facts that returns its
share (`Step`): the inputs (spec, credentials, model, S3), the export stage,
each target's build, and the summary over the targets. A step that ends the pass
says how (`Outcome`); `_decision` merges the steps in order and sets the
conditions every pass ends with (Ready, and kstatus' Reconciling and Stalled).

A Job waiting in its Kueue queue (suspended, labelled with the queue) is Queued,
not failed: its stage says `Queued in <queue>` with its Workload's condition in
Kueue's words (controller/queues.py), the resource stays Reconciling, no look is
scheduled for it (Kueue's Workload and Job events say when it moves) and the
pending deadline counts only from when Kueue started it. A Job Kueue preempted is
suspended again: Queued again, and its deleted pod is no failed attempt (the Job
controller does not count pods it deletes on suspension in `status.failed`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from bodypose_operator.api.artifacts import Kind
from bodypose_operator.api.queues import QUEUE_LABEL
from bodypose_operator.api.v1alpha1 import BodyPoseExportSpec, Target
from bodypose_operator.builders.jobs import engine_file_name
from bodypose_operator.controller.conditions import (
    BUILT,
    CALIBRATED,
    EXPORTED,
    READY,
    RECONCILING,
    STALLED,
    remove_condition,
    set_condition,
)
from bodypose_operator.controller.manifests import (
    artifact_ref,
    calibration_message,
    evaluation_status,
    shared_artifacts,
    stage_seconds,
    target_fields,
)
from bodypose_operator.controller.observe import (
    Facts,
    StageFacts,
    job_age,
    job_queue,
    job_started,
    job_state,
    job_suspended,
)
from bodypose_operator.controller.queues import queue_wait, stuck
from bodypose_operator.settings import Settings

# S3 did not answer: look again after this long (the next event may come sooner).
S3_RETRY_SECONDS = 30.0
# S3 or the credentials said no (access denied, a missing Secret or bucket): nothing
# about the resource changes when a policy is granted or a Secret created, so look
# again now and then, not at once.
REFUSED_RETRY_SECONDS = 120.0


@dataclass(frozen=True)
class Event:
    """A Kubernetes event about the resource, worth telling its user."""

    type: str  # Normal | Warning
    reason: str
    message: str
    #: The Job whose creation (or deletion) this event announces. When the create finds
    #: the Job already there (another pass or replica made it first), the event is no
    #: news and act drops it by this name.
    job: str | None = None


def _sooner(current: float | None, seconds: float) -> float:
    """The earlier of two looks; never sooner than a second (a busy loop helps no one)."""
    seconds = max(seconds, 1.0)
    return seconds if current is None or seconds < current else current


@dataclass
class Decision:
    """What one reconcile wants done, and the status it leads to."""

    status: dict[str, Any]
    create: list[dict[str, Any]] = field(default_factory=list)  # Job manifests
    delete: list[str] = field(default_factory=list)  # Job names
    index: list[tuple[str, str]] = field(default_factory=list)  # (index uri, manifest uri)
    events: list[Event] = field(default_factory=list)
    #: (stage, seconds) of stages seen complete for the first time, from their manifests.
    durations: list[tuple[str, float]] = field(default_factory=list)
    jobs_running: int = 0
    #: Seconds until a check that no event will trigger; None: events suffice.
    requeue_after: float | None = None

    def look_again(self, seconds: float) -> None:
        self.requeue_after = _sooner(self.requeue_after, seconds)


@dataclass(frozen=True)
class Outcome:
    """Where a pass ends: the resource's phase, and the reason and message of its Ready
    condition (and of Reconciling or Stalled, whichever holds)."""

    phase: str  # Pending | Exporting | Building | Ready | Failed
    reason: str
    message: str


#: A condition a step sets: (type, status, reason, message); None: Unknown.
ConditionUpdate = tuple[str, bool | None, str, str]


@dataclass
class Step:
    """One step's share of a decision; `_decision` merges the steps in order."""

    status: dict[str, Any] = field(default_factory=dict)  # status fields it sets
    conditions: list[ConditionUpdate] = field(default_factory=list)
    create: list[dict[str, Any]] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    index: list[tuple[str, str]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    durations: list[tuple[str, float]] = field(default_factory=list)
    requeue_after: float | None = None
    #: Set when the pass ends with this step; None: on to the next one.
    outcome: Outcome | None = None

    def look_again(self, seconds: float | None) -> None:
        if seconds is not None:
            self.requeue_after = _sooner(self.requeue_after, seconds)


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


def _created(what: str, manifest: dict[str, Any]) -> StageState:
    """The state of a stage whose Job this pass creates."""
    name = manifest["metadata"]["name"]
    queue = manifest["metadata"]["labels"].get(QUEUE_LABEL)
    if queue is not None:
        return _queued(what, queue, name)
    return StageState("Pending", "JobPending", f"{what}: Job created, waiting to start", name)


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
        result = (report.result if report else None) or {}
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
        return StageState("Running", "JobRunning", f"{what}: Job {name} running", name)
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


def _start_failure(what: str, failure: Any, name: str) -> StageState:
    return StageState(
        "Failed",
        "ContainerCannotRun",
        f"{what}: the container of image {failure.image} could not start "
        f"(exit code {failure.exit_code}): {failure.message}",
        name,
    )


def _next_look(stage: StageFacts, settings: Settings, now: dt.datetime) -> float | None:
    """When a Job that has not started is due a look no event will trigger: at
    `pending_check_seconds` (its pods read once), then just past the pending deadline
    (where it fails). None for a stage that is complete, or whose Job runs or ended."""
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
    return None


def _retry_events(what: str, state: StageState, before: int, settings: Settings) -> list[Event]:
    """A Warning for the attempts that failed since the last pass saw `before` of them
    (a Job that ended since: how many it took; a Job that failed for good says so in its
    own Failed state)."""
    if state.retries <= before or state.phase == "Failed":
        return []
    why = f" ({state.last_failure})" if state.last_failure else ""
    if state.phase == "Ready":
        attempts = "attempt" if state.retries == 1 else "attempts"
        message = f"{what}: complete after {state.retries} failed {attempts}, the last{why}"
        return [Event("Warning", "Retrying", message)]
    allowed = settings.backoff_limit + 1
    return [
        Event("Warning", "Retrying", f"{what}: attempt {state.retries} of {allowed} failed{why}; "
              "the Job retries it with back-off")
    ]  # fmt: skip


def _condition_status(phase: str) -> bool | None:
    """A stage condition's status: True once Ready, False once Failed, Unknown before."""
    return {"Ready": True, "Failed": False}.get(phase)


# ----- the steps ----------------------------------------------------------------------


def _inputs_step(facts: Facts) -> Step:
    """The spec, the credentials, the model's digest and S3 as observe found them; and
    the older generations' unfinished Jobs, which a new content key supersedes."""
    step = Step()
    if facts.invalid is not None:
        step.outcome = Outcome("Failed", "InvalidSpec", facts.invalid)
        return step
    spec = facts.spec
    assert spec is not None
    step.status["resolution"] = f"{spec.input.height}x{spec.input.width}"
    step.status["readyTargets"] = f"0/{len(spec.targets)}"
    if facts.refused is not None and facts.key is None:
        reason, message = facts.refused
        step.look_again(REFUSED_RETRY_SECONDS)
        if facts.refused_model:
            step.conditions.append((EXPORTED, False, reason, message))
        step.outcome = Outcome("Failed", reason, message)
        return step
    if facts.model_missing is not None:
        step.conditions.append((EXPORTED, False, "ModelNotFound", facts.model_missing))
        step.outcome = Outcome("Failed", "ModelNotFound", facts.model_missing)
        return step
    if facts.s3_unreachable is not None and facts.key is None:
        step.look_again(S3_RETRY_SECONDS)
        step.outcome = Outcome("Pending", "S3Unreachable", facts.s3_unreachable)
        return step
    assert facts.key is not None
    step.status["contentKey"] = facts.key
    for job in facts.obsolete:
        name = job.metadata.name
        state = {"Active": "running", "Failed": "failed"}.get(job_state(job), "unfinished")
        step.delete.append(name)
        step.events.append(
            Event("Normal", "Superseded",
                  f"deleted {state} Job {name}: it was made for an earlier spec", job=name)
        )  # fmt: skip
    # S3 failed while reading the stages' manifests (the key is known, the stages not).
    if facts.s3_unreachable is not None:
        step.look_again(S3_RETRY_SECONDS)
        step.outcome = Outcome("Pending", "S3Unreachable", facts.s3_unreachable)
    elif facts.refused is not None:
        step.look_again(REFUSED_RETRY_SECONDS)
        step.outcome = Outcome("Failed", *facts.refused)
    return step


def _export_step(
    body: dict[str, Any], facts: Facts, settings: Settings, old: dict[str, Any]
) -> Step:
    """The export stage: its Job, its index entry and events, the Exported and Calibrated
    conditions, the shared artifacts; the pass ends here until the export is Ready."""
    spec, key, export = facts.spec, facts.key, facts.export
    assert spec is not None and key is not None and export is not None
    step = _export_actions(body, spec, key, export, settings, old)
    if step.create:
        state = _created("export", step.create[0])
    else:
        state = stage_state(export, "export", settings, facts.now)
    step.look_again(_next_look(export, settings, facts.now))
    step.events += _retry_events("export", state, int(old.get("exportRetries") or 0), settings)
    if state.retries:
        step.status["exportRetries"] = state.retries
    if state.queue is not None:
        step.status["exportQueue"] = state.queue
    holds = _condition_status(state.phase)
    step.conditions.append((EXPORTED, holds, state.reason, state.message))
    if spec.precision == "int8":
        calibrated = (
            calibration_message(export.manifest)
            if state.phase == "Ready" and export.manifest is not None
            else state.message
        )
        step.conditions.append((CALIBRATED, holds, state.reason, calibrated))
    if export.manifest is not None:
        step.status["artifacts"] = shared_artifacts(export.manifest, export.manifest_uri)
        reference = evaluation_status(export.manifest)
        if reference:
            step.status["evaluation"] = reference
    if state.phase == "Failed":
        step.outcome = Outcome("Failed", state.reason, state.message)
    elif state.phase != "Ready":
        step.outcome = Outcome("Exporting", state.reason, state.message)
    return step


def _export_actions(
    body: dict[str, Any],
    spec: BodyPoseExportSpec,
    key: str,
    export: StageFacts,
    settings: Settings,
    old: dict[str, Any],
) -> Step:
    """The export stage's Job, its content-index entry, and the news of it."""
    step = Step()
    same_content = old.get("contentKey") == key
    was_exported = any(
        c.get("type") == EXPORTED and c.get("status") == "True" for c in old.get("conditions", [])
    )
    if export.manifest is not None and not export.reused and not (same_content and was_exported):
        step.index.append((export.index, export.manifest_uri))
    old_manifest = (old.get("artifacts") or {}).get("manifest", {}).get("uri")
    if export.reused and old_manifest != export.manifest_uri:
        step.events.append(
            Event("Normal", "Reused", f"export: reusing {export.manifest_uri} (same content)")
        )
    if export.manifest is None and export.job is None:
        job = export.desired
        name = job["metadata"]["name"]
        step.create.append(job)
        why = f"; {export.ignored}" if export.ignored else ""
        step.events.append(
            Event("Normal", "ExportStarted", f"created export Job {name}{why}", name)
        )
    if export.manifest is not None and not was_exported and not export.reused:
        seconds = stage_seconds(export.manifest)
        step.durations.append(("export", seconds))
        etlt = artifact_ref(export.manifest, Kind.ETLT) or {"uri": export.manifest_uri}
        step.events.append(
            Event("Normal", "Exported", f"export complete in {seconds:.0f}s: {etlt['uri']}")
        )
    return step


def _target_step(
    body: dict[str, Any], facts: Facts, settings: Settings, old: dict[str, Any], target: Target
) -> tuple[Step, StageState]:
    """One target's build: its Job, its index entry and events, and its state."""
    spec, key, export = facts.spec, facts.key, facts.export
    assert spec is not None and key is not None and export is not None
    stage = facts.targets[target.name]
    old_phases = {
        t.get("name"): t.get("phase") for t in old.get("targets") or [] if isinstance(t, dict)
    }
    was_ready = old_phases.get(target.name) == "Ready"
    what = f"target {target.name}"
    step = Step()
    if (
        stage.manifest is not None
        and not stage.reused
        and not (old.get("contentKey") == key and was_ready)
    ):
        step.index.append((stage.index, stage.manifest_uri))
    if stage.reused and not was_ready:
        step.events.append(
            Event("Normal", "Reused", f"{what}: reusing {stage.manifest_uri} (same content)")
        )
    if stage.manifest is None and stage.job is None:
        job = stage.desired
        name = job["metadata"]["name"]
        step.create.append(job)
        why = f"; {stage.ignored}" if stage.ignored else ""
        step.events.append(
            Event("Normal", "BuildStarted", f"created build Job {name} for target "
                  f"{target.name} ({engine_file_name(spec, target)}, identity "
                  f"{stage.identity}){why}", name)
        )  # fmt: skip
        state = _created(what, job)
    else:
        state = stage_state(stage, what, settings, facts.now)
        step.look_again(_next_look(stage, settings, facts.now))
    old_retries = next(
        (int(t.get("retries") or 0) for t in old.get("targets") or []
         if isinstance(t, dict) and t.get("name") == target.name), 0,
    )  # fmt: skip
    step.events += _retry_events(what, state, old_retries, settings)
    if stage.manifest is not None and not stage.reused and not was_ready:
        seconds = stage_seconds(stage.manifest)
        step.durations.append(("build", seconds))
        not_run = target_fields(stage.manifest).get("notRun")
        # An engine nothing ran is never called verified: built and published, with why.
        done = f"built, not run ({not_run})" if not_run else "verified"
        step.events.append(
            Event("Normal", "Built", f"{what}: engine {done} and published in {seconds:.0f}s")
        )
    return step, state


def _target_status(target: Target, state: StageState, stage: StageFacts) -> dict[str, Any]:
    """One entry of `status.targets`."""
    entry: dict[str, Any] = {
        "name": target.name,
        "phase": {"Running": "Building"}.get(state.phase, state.phase),
    }
    if stage.identity is not None:
        entry["identity"] = stage.identity
    if stage.int8_class is not None:
        entry["int8Class"] = stage.int8_class.name
        if stage.int8_class.reason:
            entry["int8ClassReason"] = stage.int8_class.reason
    if state.job:
        entry["jobName"] = state.job
    if state.phase != "Ready":
        entry["message"] = state.message
    if state.retries:
        entry["retries"] = state.retries
    if state.last_failure:
        entry["lastFailure"] = state.last_failure
    if state.queue:
        entry["queue"] = state.queue
    if state.manifest:
        entry.update(target_fields(state.manifest))
    return entry


def _summary_step(
    spec: BodyPoseExportSpec, states: list[tuple[Target, StageState]], facts: Facts
) -> Step:
    """Over all targets: their status, the Built condition and how the pass ends."""
    step = Step()
    targets = [_target_status(t, s, facts.targets[t.name]) for t, s in states]
    step.status["targets"] = targets
    drops = [t["apDrop"] for t in targets if "apDrop" in t]
    if drops:
        step.status["worstApDrop"] = max(drops)
    timed = [t["latencyMs"]["batch1"]["median"] for t in targets
             if "batch1" in t.get("latencyMs", {})]  # fmt: skip
    if timed:
        step.status["slowestLatencyMs"] = max(timed)
    total = len(spec.targets)
    ready = sum(s.phase == "Ready" for _, s in states)
    failed = [s for _, s in states if s.phase == "Failed"]
    step.status["readyTargets"] = f"{ready}/{total}"
    if failed:
        first = failed[0]
        step.conditions.append((BUILT, False, first.reason, first.message))
        busy = total - ready - len(failed)
        if busy:
            # Still work under way (Reconciling): Stalled only once the others settle,
            # so a GitOps tool waits for them rather than failing the sync early.
            message = f"{first.message}; {busy} other target(s) still building"
            step.outcome = Outcome("Building", first.reason, message)
        else:
            step.outcome = Outcome("Failed", first.reason, first.message)
    elif ready == total:
        unrun = [t["name"] for t in targets if "notRun" in t]
        built = "every target has a verified engine"
        ready_message = f"{ready}/{total} targets ready"
        if unrun:
            names = ", ".join(unrun)
            built = (f"every target has an engine; {names} built ahead of time and not run "
                     "(no GPU of its kind where it was built: status.targets[].notRun says "
                     "why)")  # fmt: skip
            ready_message += f" ({names}: built, not run)"
        step.conditions.append((BUILT, True, "AllTargetsBuilt", built))
        step.outcome = Outcome("Ready", "AllTargetsReady", ready_message)
    else:
        step.conditions.append((BUILT, None, "Building", f"{ready}/{total} targets built"))
        queued = sum(s.phase == "Queued" for _, s in states)
        message = f"{ready}/{total} targets ready" + (f", {queued} queued" if queued else "")
        # Every unfinished target waits in its Kueue queue: the reason says so.
        reason = "Queued" if queued == total - ready else "Building"
        step.outcome = Outcome("Building", reason, message)
    return step


# ----- the decision -------------------------------------------------------------------


def decide(body: dict[str, Any], facts: Facts, settings: Settings) -> Decision:
    """The decision for one pass over the resource `body`, from what observe found."""
    old = dict(body.get("status") or {})
    steps = [_inputs_step(facts)]
    if steps[-1].outcome is None:
        steps.append(_export_step(body, facts, settings, old))
    if steps[-1].outcome is None:
        assert facts.spec is not None
        built = [_target_step(body, facts, settings, old, t) for t in facts.spec.targets]
        steps += [step for step, _ in built]
        states = [(t, state) for t, (_, state) in zip(facts.spec.targets, built, strict=True)]
        steps.append(_summary_step(facts.spec, states, facts))
    generation = int(body["metadata"].get("generation", 1))
    # Jobs run for this content key only: none is counted before the key is known.
    running = facts.running if facts.key is not None else 0
    decision = _decision(generation, old, running, steps)
    if facts.s3_unreachable is not None and old.get("observedGeneration") == generation:
        # S3 did not answer, so this pass saw neither the key nor the stages: what the last
        # pass saw of this same spec stands (Reconciling says S3 is away) rather than a
        # status emptied by a blip, which GitOps tools would read as work lost.
        for key in LAST_SEEN:
            if key in old:
                decision.status[key] = old[key]
    return decision


#: The status fields a pass that could not reach S3 keeps from the last one.
LAST_SEEN = (
    "contentKey", "readyTargets", "artifacts", "targets", "evaluation", "worstApDrop",
    "slowestLatencyMs", "exportRetries", "exportQueue",
)  # fmt: skip


def _decision(generation: int, old: dict[str, Any], running: int, steps: list[Step]) -> Decision:
    """The steps merged in order, and the conditions and phase event of how they end."""
    outcome = steps[-1].outcome
    assert outcome is not None, "the last step ends the pass"
    decision = Decision({"observedGeneration": generation})
    conditions = [c for c in old.get("conditions", []) if isinstance(c, dict)]
    for step in steps:
        decision.status.update(step.status)
        for type_, holds, reason, message in step.conditions:
            conditions = set_condition(conditions, type_, holds, reason, message, generation)
        decision.create += step.create
        decision.delete += step.delete
        decision.index += step.index
        decision.events += step.events
        decision.durations += step.durations
        if step.requeue_after is not None:
            decision.look_again(step.requeue_after)
    decision.jobs_running = running + sum(not m["spec"].get("suspend") for m in decision.create)
    phase, reason, message = outcome.phase, outcome.reason, outcome.message
    conditions = set_condition(conditions, READY, phase == "Ready", reason, message, generation)
    # Failed waits for a spec change (Stalled); Ready is done; every other phase is
    # work under way, S3 that did not answer included: it retries by itself.
    for type_, holds in ((STALLED, phase == "Failed"),
                         (RECONCILING, phase not in ("Failed", "Ready"))):  # fmt: skip
        if holds:
            conditions = set_condition(conditions, type_, True, reason, message, generation)
        else:
            conditions = remove_condition(conditions, type_)
    decision.status["conditions"] = conditions
    decision.status["phase"] = phase
    if old.get("phase") != phase:
        decision.events.append(Event("Normal" if phase != "Failed" else "Warning", phase, message))
    return decision
