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
This module reads in that order, below its types: `decide`, then each step, then
the merge. Where a stage is (its Job's state, its pods' termination message, its
retries, its queue) is controller/stage_state.py's to say.

A Job waiting in its Kueue queue (suspended, labelled with the queue) is Queued,
not failed: its stage says `Queued in <queue>` with its Workload's condition in
Kueue's words (controller/queues.py), the resource stays Reconciling, no look is
scheduled for it (Kueue's Workload and Job events say when it moves) and the
pending deadline counts only from when Kueue started it. A Job Kueue preempted is
suspended again: Queued again, and its deleted pod is no failed attempt (the Job
controller does not count pods it deletes on suspension in `status.failed`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bodypose_contract.artifacts import Kind
from bodypose_operator.api.backends import BACKENDS
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
from bodypose_operator.controller.facts import Facts, StageFacts
from bodypose_operator.controller.job_digest import Digest
from bodypose_operator.controller.job_status import job_state
from bodypose_operator.controller.manifests import (
    artifact_ref,
    calibration_message,
    evaluation_status,
    shared_artifacts,
    stage_seconds,
    target_fields,
)
from bodypose_operator.controller.stage_state import StageState, created, next_look, stage_state
from bodypose_operator.settings import Settings

# S3 did not answer: look again after this long (the next event may come sooner).
S3_RETRY_SECONDS = 30.0
# S3 or the credentials said no (access denied, a missing Secret or bucket): nothing
# about the resource changes when a policy is granted or a Secret created, so look
# again now and then, not at once.
REFUSED_RETRY_SECONDS = 120.0


#: The phases a resource rests in: Ready is done, Failed waits for a spec change.
TERMINAL = ("Ready", "Failed")


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
    #: Job name -> what this pass saw of it (controller/job_digest.py), the Jobs it
    #: created included (act fills them in): a Job event that shows the same is no news.
    jobs_seen: dict[str, Digest] = field(default_factory=dict)

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


# ----- the decision, in the order it runs ---------------------------------------------


#: The status fields a pass that could not reach S3 keeps from the last one.
LAST_SEEN = (
    "contentKey", "readyTargets", "artifacts", "targets", "evaluation", "worstApDrop",
    "slowestLatencyMs", "exportRetries", "exportQueue",
)  # fmt: skip


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
        state = created("export", step.create[0])
    else:
        state = stage_state(export, "export", settings, facts.now)
    step.look_again(next_look(export, settings, facts.now, state.phase))
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


def _condition_status(phase: str) -> bool | None:
    """A stage condition's status: True once Ready, False once Failed, Unknown before."""
    return {"Ready": True, "Failed": False}.get(phase)


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
        state = created(what, job)
    else:
        state = stage_state(stage, what, settings, facts.now)
        step.look_again(next_look(stage, settings, facts.now, state.phase))
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
        # Published all the same; the event is what an alert on Warning events sees.
        for warning in target_fields(stage.manifest).get("warnings", []):
            step.events.append(Event("Warning", "BuildWarning", f"{what}: {warning}"))
    return step, state


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
        entry.update(target_fields(state.manifest, BACKENDS[target.backend].status_keys))
    return entry


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
    # A phase under way is announced only by a pass that says nothing else: the pass that
    # creates the export Job said "created export Job ..." (ExportStarted) and then
    # "Exporting: ... Job created (...), waiting to start", two events of one fact, and
    # an event is a write to the API server (issue 32: 2.00 events a resource in the
    # burst of benchmarks/operator_scale.py). Ready and Failed are always announced.
    if old.get("phase") != phase and (phase in TERMINAL or not decision.events):
        decision.events.append(Event("Normal" if phase != "Failed" else "Warning", phase, message))
    return decision
