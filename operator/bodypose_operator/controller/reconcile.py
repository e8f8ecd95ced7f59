"""One reconcile pass: observe S3 and the Jobs, act, and compute the status.

Level-triggered and idempotent: every pass recomputes everything from facts
(stage manifests in S3, Job and pod status), so a restarted operator neither
duplicates a Job (names are deterministic, creation is create-if-absent) nor
loses a result (results live in S3 manifests and pod termination messages).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from bodypose_operator.api.v1alpha1 import BodyPoseExportSpec, Target
from bodypose_operator.builders.jobs import (
    artifact_prefix,
    build_export_job,
    build_target_job,
    engine_file_name,
)
from bodypose_operator.builders.naming import (
    LABEL_CONTENT_KEY,
    LABEL_STAGE,
    LABEL_TARGET,
    content_key,
    pool_identity,
)
from bodypose_operator.controller import artifacts, pods
from bodypose_operator.controller.cluster import ClusterView
from bodypose_operator.controller.conditions import (
    BUILT,
    CALIBRATED,
    EXPORTED,
    READY,
    set_condition,
)
from bodypose_operator.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """The new status plus the events worth telling the user about."""

    status: dict[str, Any]
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    jobs_running: int = 0
    #: (stage, seconds) of stages seen complete for the first time, from their manifests.
    durations: list[tuple[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class StageState:
    phase: str  # Pending | Running | Ready | Failed
    reason: str
    message: str
    job: str | None = None
    manifest: dict[str, Any] | None = None
    result: dict[str, Any] | None = None


def _job_state(job: Any) -> str:
    st = job.status
    if st.succeeded:
        return "Succeeded"
    for cond in st.conditions or []:
        if cond.type == "Failed" and cond.status == "True":
            return "Failed"
    return "Active"


def _age_seconds(timestamp: dt.datetime | None) -> float:
    if timestamp is None:
        return 0.0
    return (dt.datetime.now(dt.UTC) - timestamp).total_seconds()


def _observe_stage(
    cluster: ClusterView,
    namespace: str,
    job: Any | None,
    manifest: dict[str, Any] | None,
    what: str,
    settings: Settings,
) -> StageState:
    if manifest is not None:
        return StageState(
            "Ready", "Complete", f"{what} complete", job and job.metadata.name, manifest
        )
    if job is None:
        return StageState("Pending", "JobPending", f"{what}: Job not created yet")
    name = job.metadata.name
    report = pods.report(cluster.pods_of(namespace, name))
    state = _job_state(job)
    if state == "Succeeded":
        # The manifest is written last; a succeeded Job without it lost its upload.
        return StageState(
            "Failed", "ManifestMissing", f"{what}: Job {name} succeeded but wrote no manifest", name
        )
    if report.start_failure is not None:
        # Fails at once: the Job's retry would run the same image the same way.
        start = report.start_failure
        return StageState(
            "Failed",
            "ContainerCannotRun",
            f"{what}: the container of image {start.image} could not start "
            f"(exit code {start.exit_code}): {start.message}",
            name,
        )
    if state == "Failed":
        result = report.result or {}
        reason = str(result.get("reason") or "JobFailed")
        message = str(result.get("message") or f"Job {name} failed")
        return StageState("Failed", reason, f"{what}: {message}", name, None, result)
    if report.waiting_reason == "CreateContainerConfigError":
        detail = report.waiting_message or "container config error"
        return StageState("Failed", "ConfigError", f"{what}: {detail}", name)
    if report.image_pull is not None:
        # The kubelet keeps retrying (the image may yet be pushed); past the pending
        # deadline the stage fails, so the resource does not wait forever.
        pull = report.image_pull
        message = f"{what}: image {pull.image} cannot be pulled ({pull.reason})"
        if pull.message:
            message += f": {pull.message}"
        if _age_seconds(job.metadata.creation_timestamp) > settings.pending_deadline_seconds:
            return StageState("Failed", "ImagePullBackOff", message, name)
        return StageState("Running", pull.reason, message, name)
    if report.unschedulable_message is not None:
        if _age_seconds(job.metadata.creation_timestamp) > settings.pending_deadline_seconds:
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
    m = state.manifest
    if m:
        engine = _artifact(m, "engine")
        if engine:
            out["engineUri"] = engine["uri"]
            out["sha256"] = engine["sha256"]
            out["sizeBytes"] = engine["sizeBytes"]
        hw = m.get("hardware", {})
        for src, dst in (
            ("gpuName", "gpuName"),
            ("computeCapability", "computeCapability"),
            ("tensorrtVersion", "tensorrtVersion"),
        ):
            if hw.get(src) is not None:
                out[dst] = str(hw[src])
        if m.get("timingsSeconds", {}).get("build") is not None:
            out["buildSeconds"] = float(m["timingsSeconds"]["build"])
        figures = m.get("verification", {}).get("figures")
        if isinstance(figures, dict):
            out["verification"] = {
                k: float(v) for k, v in figures.items() if isinstance(v, (int, float))
            }
    return out


def _seconds(manifest: dict[str, Any]) -> float:
    timings = manifest.get("timingsSeconds") or {}
    return float(sum(v for v in timings.values() if isinstance(v, int | float)))


def _stage_manifest(
    own_uri: str, index: str, may_reuse: bool, known_complete: bool
) -> tuple[str, dict[str, Any] | None, bool]:
    """A stage's manifest URI, the manifest (None while incomplete) and whether it is reused:
    this resource's own, else (no Job of ours running) one the content index names,
    made by another resource with the same content.

    The index entry is written when this resource first sees its own manifest
    (`known_complete`: the previous status already had it), not on every resync.
    """
    own = artifacts.read_manifest(own_uri)
    if own is not None:
        if not known_complete:
            artifacts.record(index, own_uri)
        return own_uri, own, False
    if may_reuse:
        found = artifacts.reusable(index)
        if found is not None:
            return found[0], found[1], True
    return own_uri, None, False


def reconcile(body: dict[str, Any], cluster: ClusterView, settings: Settings) -> Outcome:
    meta, raw_spec = body["metadata"], body.get("spec") or {}
    name, namespace, generation = meta["name"], meta["namespace"], int(meta.get("generation", 1))
    old = dict(body.get("status") or {})
    conditions: list[dict[str, Any]] = [c for c in old.get("conditions", []) if isinstance(c, dict)]
    events: list[tuple[str, str, str]] = []
    durations: list[tuple[str, float]] = []
    status: dict[str, Any] = {"observedGeneration": generation}

    def finish(phase: str, ready: bool | None, reason: str, message: str) -> Outcome:
        nonlocal conditions
        conditions = set_condition(conditions, READY, ready, reason, message, generation)
        status["conditions"] = conditions
        status["phase"] = phase
        if old.get("phase") != phase:
            events.append(("Normal" if phase != "Failed" else "Warning", phase, message))
        return Outcome(status, events, durations=durations)

    try:
        spec = BodyPoseExportSpec.model_validate(raw_spec)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return finish(
            "Failed", False, "InvalidSpec", f"spec{'.' + where if where else ''}: {first['msg']}"
        )
    status["resolution"] = f"{spec.input.height}x{spec.input.width}"
    status["readyTargets"] = f"0/{len(spec.targets)}"

    try:
        digest = artifacts.model_digest(spec.model.uri)
    except artifacts.ModelNotFound as exc:
        conditions = set_condition(
            conditions, EXPORTED, False, "ModelNotFound", str(exc), generation
        )
        return finish("Failed", False, "ModelNotFound", str(exc))
    except artifacts.S3Unreachable as exc:
        return finish("Pending", False, "S3Unreachable", str(exc))

    key = content_key(digest, spec)
    prefix = artifact_prefix(spec, namespace, name, key)
    status["contentKey"] = key
    jobs = cluster.jobs_of(namespace, name)
    running = 0

    # A new content key supersedes the older generations' unfinished Jobs.
    current = []
    for job in jobs:
        if job.metadata.labels.get(LABEL_CONTENT_KEY) != key:
            if _job_state(job) == "Active":
                cluster.delete_job(namespace, job.metadata.name)
                events.append(
                    ("Normal", "Superseded", f"deleted Job {job.metadata.name} of an older spec")
                )
        else:
            current.append(job)
            running += _job_state(job) == "Active"

    def find(stage: str, target: str | None = None) -> Any | None:
        for job in current:
            labels = job.metadata.labels
            if labels.get(LABEL_STAGE) == stage and labels.get(LABEL_TARGET) == target:
                return job
        return None

    export_job = find("export")
    same_content = old.get("contentKey") == key
    was_exported = any(
        c.get("type") == EXPORTED and c.get("status") == "True" for c in old.get("conditions", [])
    )
    try:
        export_uri, export_manifest, reused = _stage_manifest(
            f"{prefix}/manifest.json",
            artifacts.index_uri(spec.output.uri, key, "export"),
            export_job is None,
            same_content and was_exported,
        )
    except artifacts.S3Unreachable as exc:
        return finish("Pending", False, "S3Unreachable", str(exc))
    if reused and (old.get("artifacts") or {}).get("manifest", {}).get("uri") != export_uri:
        events.append(("Normal", "Reused", f"export: reusing {export_uri} (same content)"))
    shared = export_uri.rsplit("/", 1)[0]
    if export_manifest is None and export_job is None:
        manifest = build_export_job(body, spec, key, settings)
        if cluster.create_job(manifest):
            events.append(
                ("Normal", "ExportStarted", f"created export Job {manifest['metadata']['name']}")
            )
            running += 1
        export_job = None
    export = _observe_stage(cluster, namespace, export_job, export_manifest, "export", settings)
    conditions = set_condition(
        conditions,
        EXPORTED,
        {"Ready": True, "Failed": False}.get(export.phase),
        export.reason,
        export.message,
        generation,
    )
    if spec.precision == "int8":
        conditions = set_condition(
            conditions,
            CALIBRATED,
            {"Ready": True, "Failed": False}.get(export.phase),
            export.reason,
            _calibration_message(export_manifest)
            if export.phase == "Ready" and export_manifest is not None
            else export.message,
            generation,
        )
    if export_manifest is not None and not was_exported and not reused:
        seconds = _seconds(export_manifest)
        durations.append(("export", seconds))
        etlt = _artifact(export_manifest, "etlt") or {"uri": export_uri}
        events.append(("Normal", "Exported", f"export complete in {seconds:.0f}s: {etlt['uri']}"))
    if export_manifest is not None:
        status["artifacts"] = {
            k: v
            for k, v in {
                "etlt": _artifact(export_manifest, "etlt"),
                "onnx": _artifact(export_manifest, "onnx"),
                "calibrationCache": _artifact(export_manifest, "calibration-cache"),
                "qdqModel": _artifact(export_manifest, "qdq-model"),
                "tensorfile": _tensorfile(export_manifest),
                "manifest": {"uri": export_uri},
            }.items()
            if v
        }
    if export.phase == "Failed":
        status["conditions"] = conditions
        return Outcome(
            finish("Failed", False, export.reason, export.message).status, events, running
        )
    if export.phase != "Ready":
        out = finish("Exporting", False, export.reason, export.message)
        out.jobs_running = running
        return out

    old_targets = {
        t.get("name"): t.get("phase") for t in old.get("targets") or [] if isinstance(t, dict)
    }
    target_states = []
    for target in spec.targets:
        job = find("build", target.name)
        try:
            target_uri, target_manifest, reused = _stage_manifest(
                f"{prefix}/targets/{target.name}/manifest.json",
                artifacts.index_uri(spec.output.uri, key, f"pool-{pool_identity(target)}"),
                job is None,
                same_content and old_targets.get(target.name) == "Ready",
            )
        except artifacts.S3Unreachable as exc:
            return finish("Pending", False, "S3Unreachable", str(exc))
        if reused and old_targets.get(target.name) != "Ready":
            events.append(
                ("Normal", "Reused", f"target {target.name}: reusing {target_uri} (same content)")
            )
        if target_manifest is None and job is None:
            manifest = build_target_job(body, spec, target, key, settings, shared)
            if cluster.create_job(manifest):
                events.append(
                    ("Normal", "BuildStarted", f"created build Job {manifest['metadata']['name']} "
                     f"for target {target.name} ({engine_file_name(spec)})")
                )  # fmt: skip
                running += 1
        state = _observe_stage(
            cluster, namespace, job, target_manifest, f"target {target.name}", settings
        )
        if target_manifest is not None and not reused and old_targets.get(target.name) != "Ready":
            seconds = _seconds(target_manifest)
            durations.append(("build", seconds))
            events.append(("Normal", "Built", f"target {target.name}: engine verified and "
                           f"published in {seconds:.0f}s"))  # fmt: skip
        target_states.append((target, state))

    status["targets"] = [_target_status(t, s) for t, s in target_states]
    ready = sum(s.phase == "Ready" for _, s in target_states)
    failed = [(t, s) for t, s in target_states if s.phase == "Failed"]
    status["readyTargets"] = f"{ready}/{len(spec.targets)}"
    if failed:
        s = failed[0][1]
        conditions = set_condition(conditions, BUILT, False, s.reason, s.message, generation)
        out = finish("Failed", False, s.reason, s.message)
    elif ready == len(spec.targets):
        conditions = set_condition(
            conditions,
            BUILT,
            True,
            "AllTargetsBuilt",
            "every target has a verified engine",
            generation,
        )
        out = finish("Ready", True, "AllTargetsReady", f"{ready}/{len(spec.targets)} targets ready")
    else:
        conditions = set_condition(
            conditions,
            BUILT,
            None,
            "Building",
            f"{ready}/{len(spec.targets)} targets built",
            generation,
        )
        out = finish("Building", False, "Building", f"{ready}/{len(spec.targets)} targets ready")
    out.jobs_running = running
    return out
