"""Decide: from the facts to the desired Jobs and the status. A pure function.

No I/O here: `decide(body, facts, settings)` returns what to create and delete,
which content-index entries to write, the status, the events worth telling the
user, and when to look again if a wait is on time rather than on an event (a
Job that has not started: first at `pending_check_seconds`, to report an image
that cannot be pulled or a pool with no room, then at the pending deadline, to
fail it). Level-triggered: the same facts always give the same decision, so a
restarted operator neither duplicates a Job (names are deterministic) nor loses
a result (results live in S3 manifests and pod termination messages).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from bodypose_operator.api.v1alpha1 import BodyPoseExportSpec, Target
from bodypose_operator.builders.jobs import build_export_job, build_target_job, engine_file_name
from bodypose_operator.builders.naming import job_name
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
from bodypose_operator.controller.observe import (
    Facts,
    StageFacts,
    job_age,
    job_started,
    job_state,
)
from bodypose_operator.settings import Settings

# S3 did not answer: look again after this long (the next event may come sooner).
S3_RETRY_SECONDS = 30.0
# S3 or the credentials said no (access denied, a missing Secret or bucket): nothing
# about the resource changes when a policy is granted or a Secret created, so look
# again now and then, not at once.
REFUSED_RETRY_SECONDS = 120.0


@dataclass
class Decision:
    """What one reconcile wants done, and the status it leads to."""

    status: dict[str, Any]
    create: list[dict[str, Any]] = field(default_factory=list)  # Job manifests
    delete: list[str] = field(default_factory=list)  # Job names
    index: list[tuple[str, str]] = field(default_factory=list)  # (index uri, manifest uri)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    #: (stage, seconds) of stages seen complete for the first time, from their manifests.
    durations: list[tuple[str, float]] = field(default_factory=list)
    jobs_running: int = 0
    #: Seconds until a check that no event will trigger; None: events suffice.
    requeue_after: float | None = None

    def look_again(self, seconds: float) -> None:
        seconds = max(seconds, 1.0)
        if self.requeue_after is None or seconds < self.requeue_after:
            self.requeue_after = seconds


@dataclass(frozen=True)
class StageState:
    phase: str  # Pending | Running | Ready | Failed
    reason: str
    message: str
    job: str | None = None
    manifest: dict[str, Any] | None = None
    #: Pods of the Job that failed before this state (the Job's retries, backoffLimit).
    retries: int = 0


def _stage_state(
    stage: StageFacts, what: str, settings: Settings, facts: Facts, out: Decision
) -> StageState:
    state = _stage_state_of_job(stage, what, settings, facts, out)
    failed = int(getattr(stage.job.status, "failed", 0) or 0) if stage.job is not None else 0
    if stage.job is None or failed == 0:
        return state
    # A retry is news: the user learns a pod failed even when the next one succeeds.
    retries = failed if state.phase != "Failed" else failed - 1
    if retries <= 0:
        return state
    note = f" (after {retries} failed {'attempt' if retries == 1 else 'attempts'}, retried)"
    return dataclasses.replace(state, message=state.message + note, retries=retries)


def _stage_state_of_job(
    stage: StageFacts, what: str, settings: Settings, facts: Facts, out: Decision
) -> StageState:
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
    age = job_age(job, facts.now)
    if not job_started(job):
        if age < settings.pending_check_seconds:
            out.look_again(settings.pending_check_seconds - age)
        elif age < settings.pending_deadline_seconds:
            out.look_again(settings.pending_deadline_seconds - age + 1)
    if report is None:
        return StageState("Running", "JobRunning", f"{what}: Job {name} running", name)
    if report.start_failure is not None:
        return _start_failure(what, report.start_failure, name)
    if report.waiting_reason == "CreateContainerConfigError":
        detail = report.waiting_message or "container config error"
        return StageState("Failed", "ConfigError", f"{what}: {detail}", name)
    past_deadline = age > settings.pending_deadline_seconds
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


def _artifact(manifest: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for a in manifest.get("artifacts", []):
        if a.get("kind") == kind:
            return {"uri": a["path"], "sha256": a.get("sha256"), "sizeBytes": a.get("bytes")}
    return None


def _tensorfile(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The tensorfile lives where the spec named it, not among the published artifacts."""
    uri = (manifest.get("calibration") or {}).get("tensorfile")
    return {"uri": uri} if uri else None


def _calibration_message(manifest: dict[str, Any]) -> str:
    cal = manifest.get("calibration") or {}
    if cal.get("cacheReused"):
        return f"cal.bin reused from {cal.get('cacheFile')}"
    text = (
        f"cal.bin from {cal.get('images', 0)} images in {cal.get('batches', 0)} batches "
        f"({cal.get('method', 'entropy')})"
    )
    agreement = cal.get("agreement") or {}
    if agreement:
        text += (
            f"; QDQ vs FP32 on {agreement.get('images')} held-back images: heatmap cosine "
            f"{agreement.get('heatmap_cosine_mean', 0):.4f}, peaks at the same pixel "
            f"{100 * agreement.get('peak_match', 0):.1f}%"
        )
    return text


def _target_status(target: Target, state: StageState) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": target.name,
        "phase": {"Running": "Building"}.get(state.phase, state.phase),
    }
    if state.job:
        out["jobName"] = state.job
    if state.phase != "Ready":
        out["message"] = state.message
    if state.retries:
        out["retries"] = state.retries
    m = state.manifest
    if m:
        engine = _artifact(m, "engine")
        if engine:
            out["engineUri"] = engine["uri"]
            out["sha256"] = engine["sha256"]
            out["sizeBytes"] = engine["sizeBytes"]
        deploy = _artifact(m, "deploy-engine")
        if deploy:
            out["deployEngine"] = {k: v for k, v in deploy.items() if v is not None}
        # The compatibility record (a TensorRT engine's GPU, an int8 CPU artifact's
        # instruction set) over what the hardware said.
        record = {**m.get("hardware", {}), **(m.get("compatibility") or {})}
        for key in ("gpuName", "computeCapability", "tensorrtVersion", "hardwareCompatibility",
                    "instructionSet"):  # fmt: skip
            if record.get(key) is not None:
                out[key] = str(record[key])
        if isinstance(m.get("runtime"), str):
            out["runtime"] = m["runtime"]
        serving = m.get("serving") or {}
        configs = {k: serving[k] for k in ("tritonRepository", "tritonConfig", "deepstreamConfig")
                   if isinstance(serving.get(k), str)}  # fmt: skip
        if configs:
            out["serving"] = configs
        if m.get("timingsSeconds", {}).get("build") is not None:
            out["buildSeconds"] = float(m["timingsSeconds"]["build"])
        evaluation = m.get("evaluation") or {}
        ap = (evaluation.get("figures") or {}).get("AP")
        if isinstance(ap, int | float):
            out["ap"] = round(float(ap), 2)
            for key in ("apDrop", "maxApDrop"):
                if isinstance(evaluation.get(key), int | float):
                    out[key] = round(float(evaluation[key]), 2)
        figures = m.get("verification", {}).get("figures")
        if isinstance(figures, dict):
            out["verification"] = {
                k: float(v) for k, v in figures.items() if isinstance(v, (int, float))
            }
    return out


def _evaluation_status(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The FP32 model's AP on the evaluation set, as the export recorded it."""
    evaluation = manifest.get("evaluation")
    if not isinstance(evaluation, dict):
        return None
    figures = evaluation.get("figures") or {}
    out: dict[str, Any] = {}
    if isinstance(evaluation.get("images"), int):
        out["images"] = evaluation["images"]
    for src, dst in (("AP", "ap"), ("AP50", "ap50"), ("AP75", "ap75"), ("APm", "apM"),
                     ("APl", "apL")):  # fmt: skip
        if isinstance(figures.get(src), int | float):
            out[dst] = round(float(figures[src]), 2)
    if isinstance(evaluation.get("note"), str):
        out["note"] = evaluation["note"]
    return out or None


def _seconds(manifest: dict[str, Any]) -> float:
    timings = manifest.get("timingsSeconds") or {}
    return float(sum(v for v in timings.values() if isinstance(v, int | float)))


def decide(body: dict[str, Any], facts: Facts, settings: Settings) -> Decision:
    meta = body["metadata"]
    name, generation = meta["name"], int(meta.get("generation", 1))
    old = dict(body.get("status") or {})
    conditions: list[dict[str, Any]] = [c for c in old.get("conditions", []) if isinstance(c, dict)]
    status: dict[str, Any] = {"observedGeneration": generation}
    out = Decision(status)

    def finish(phase: str, ready: bool | None, reason: str, message: str) -> Decision:
        nonlocal conditions
        conditions = set_condition(conditions, READY, ready, reason, message, generation)
        # Failed waits for a spec change (Stalled); Ready is done; every other phase is
        # work under way, S3 that did not answer included: it retries by itself.
        for type_, holds in ((STALLED, phase == "Failed"),
                             (RECONCILING, phase not in ("Failed", "Ready"))):  # fmt: skip
            if holds:
                conditions = set_condition(conditions, type_, True, reason, message, generation)
            else:
                conditions = remove_condition(conditions, type_)
        status["conditions"] = conditions
        status["phase"] = phase
        if old.get("phase") != phase:
            out.events.append(("Normal" if phase != "Failed" else "Warning", phase, message))
        return out

    if facts.invalid is not None:
        return finish("Failed", False, "InvalidSpec", facts.invalid)
    spec = facts.spec
    assert spec is not None
    status["resolution"] = f"{spec.input.height}x{spec.input.width}"
    status["readyTargets"] = f"0/{len(spec.targets)}"
    if facts.refused is not None and facts.key is None:
        reason, message = facts.refused
        out.look_again(REFUSED_RETRY_SECONDS)
        if facts.refused_model:
            conditions = set_condition(conditions, EXPORTED, False, reason, message, generation)
        return finish("Failed", False, reason, message)
    if facts.model_missing is not None:
        conditions = set_condition(
            conditions, EXPORTED, False, "ModelNotFound", facts.model_missing, generation
        )
        return finish("Failed", False, "ModelNotFound", facts.model_missing)
    if facts.s3_unreachable is not None and facts.key is None:
        out.look_again(S3_RETRY_SECONDS)
        return finish("Pending", False, "S3Unreachable", facts.s3_unreachable)
    key = facts.key
    assert key is not None
    status["contentKey"] = key
    out.jobs_running = facts.running

    # A new content key supersedes the older generations' unfinished Jobs.
    for job in facts.superseded:
        out.delete.append(job.metadata.name)
        out.events.append(
            ("Normal", "Superseded", f"deleted Job {job.metadata.name} of an older spec")
        )
    if facts.s3_unreachable is not None:
        out.look_again(S3_RETRY_SECONDS)
        return finish("Pending", False, "S3Unreachable", facts.s3_unreachable)
    if facts.refused is not None:
        out.look_again(REFUSED_RETRY_SECONDS)
        return finish("Failed", False, *facts.refused)
    export = facts.export
    assert export is not None
    same_content = old.get("contentKey") == key
    was_exported = any(
        c.get("type") == EXPORTED and c.get("status") == "True" for c in old.get("conditions", [])
    )
    _export_stage(body, spec, key, facts, settings, out, old, same_content, was_exported)
    state = _stage_state(export, "export", settings, facts, out)
    if export.manifest is None and export.job is None:
        state = StageState("Pending", "JobPending", "export: Job created, waiting to start")
    conditions = set_condition(
        conditions, EXPORTED, {"Ready": True, "Failed": False}.get(state.phase),
        state.reason, state.message, generation,
    )  # fmt: skip
    if spec.precision == "int8":
        calibrated = (
            _calibration_message(export.manifest)
            if state.phase == "Ready" and export.manifest is not None
            else state.message
        )
        conditions = set_condition(
            conditions, CALIBRATED, {"Ready": True, "Failed": False}.get(state.phase),
            state.reason, calibrated, generation,
        )  # fmt: skip
    if export.manifest is not None:
        m = export.manifest
        status["artifacts"] = {
            k: v
            for k, v in {
                "etlt": _artifact(m, "etlt"),
                "onnx": _artifact(m, "onnx"),
                "calibrationCache": _artifact(m, "calibration-cache"),
                "qdqModel": _artifact(m, "qdq-model"),
                "tensorfile": _tensorfile(m),
                "manifest": {"uri": export.manifest_uri},
            }.items()
            if v
        }
        reference = _evaluation_status(m)
        if reference:
            status["evaluation"] = reference
    if state.phase == "Failed":
        return finish("Failed", False, state.reason, state.message)
    if state.phase != "Ready":
        return finish("Exporting", False, state.reason, state.message)

    old_targets = {
        t.get("name"): t.get("phase") for t in old.get("targets") or [] if isinstance(t, dict)
    }
    shared = export.manifest_uri.rsplit("/", 1)[0]
    states = []
    for target in spec.targets:
        stage = facts.targets[target.name]
        was_ready = same_content and old_targets.get(target.name) == "Ready"
        what = f"target {target.name}"
        if stage.manifest is not None and not stage.reused and not was_ready:
            out.index.append((stage.index, stage.manifest_uri))
        if stage.reused and old_targets.get(target.name) != "Ready":
            out.events.append(
                ("Normal", "Reused", f"{what}: reusing {stage.manifest_uri} (same content)")
            )
        if stage.manifest is None and stage.job is None:
            manifest = build_target_job(body, spec, target, key, settings, shared)
            out.create.append(manifest)
            out.events.append(
                ("Normal", "BuildStarted", f"created build Job {manifest['metadata']['name']} "
                 f"for target {target.name} ({engine_file_name(spec, target)})")
            )  # fmt: skip
            out.jobs_running += 1
            state = StageState(
                "Pending", "JobPending", f"{what}: Job created, waiting to start",
                job_name(name, "build", key, target.name),
            )  # fmt: skip
        else:
            state = _stage_state(stage, what, settings, facts, out)
        if (
            stage.manifest is not None
            and not stage.reused
            and old_targets.get(target.name) != "Ready"
        ):
            seconds = _seconds(stage.manifest)
            out.durations.append(("build", seconds))
            out.events.append(("Normal", "Built", f"{what}: engine verified and "
                               f"published in {seconds:.0f}s"))  # fmt: skip
        states.append((target, state))

    status["targets"] = [_target_status(t, s) for t, s in states]
    drops = [t["apDrop"] for t in status["targets"] if "apDrop" in t]
    if drops:
        status["worstApDrop"] = max(drops)
    ready = sum(s.phase == "Ready" for _, s in states)
    failed = [s for _, s in states if s.phase == "Failed"]
    status["readyTargets"] = f"{ready}/{len(spec.targets)}"
    if failed:
        s = failed[0]
        conditions = set_condition(conditions, BUILT, False, s.reason, s.message, generation)
        busy = len(spec.targets) - ready - len(failed)
        if busy:
            # Still work under way (Reconciling): Stalled only once the others settle,
            # so a GitOps tool waits for them rather than failing the sync early.
            return finish(
                "Building", False, s.reason, f"{s.message}; {busy} other target(s) still building"
            )
        return finish("Failed", False, s.reason, s.message)
    if ready == len(spec.targets):
        conditions = set_condition(
            conditions, BUILT, True, "AllTargetsBuilt", "every target has a verified engine",
            generation,
        )  # fmt: skip
        return finish(
            "Ready", True, "AllTargetsReady", f"{ready}/{len(spec.targets)} targets ready"
        )
    conditions = set_condition(
        conditions, BUILT, None, "Building", f"{ready}/{len(spec.targets)} targets built",
        generation,
    )  # fmt: skip
    return finish("Building", False, "Building", f"{ready}/{len(spec.targets)} targets ready")


def _export_stage(
    body: dict[str, Any],
    spec: BodyPoseExportSpec,
    key: str,
    facts: Facts,
    settings: Settings,
    out: Decision,
    old: dict[str, Any],
    same_content: bool,
    was_exported: bool,
) -> None:
    """The export stage's actions: its Job, its index entry, its events."""
    export = facts.export
    assert export is not None
    if export.manifest is not None and not export.reused and not (same_content and was_exported):
        out.index.append((export.index, export.manifest_uri))
    old_manifest = (old.get("artifacts") or {}).get("manifest", {}).get("uri")
    if export.reused and old_manifest != export.manifest_uri:
        out.events.append(
            ("Normal", "Reused", f"export: reusing {export.manifest_uri} (same content)")
        )
    if export.manifest is None and export.job is None:
        manifest = build_export_job(body, spec, key, settings)
        out.create.append(manifest)
        out.events.append(
            ("Normal", "ExportStarted", f"created export Job {manifest['metadata']['name']}")
        )
        out.jobs_running += 1
    if export.manifest is not None and not was_exported and not export.reused:
        seconds = _seconds(export.manifest)
        out.durations.append(("export", seconds))
        etlt = _artifact(export.manifest, "etlt") or {"uri": export.manifest_uri}
        out.events.append(
            ("Normal", "Exported", f"export complete in {seconds:.0f}s: {etlt['uri']}")
        )
