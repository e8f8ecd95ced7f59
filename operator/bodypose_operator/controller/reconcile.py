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
    if state == "Failed":
        result = report.result or {}
        reason = str(result.get("reason") or "JobFailed")
        message = str(result.get("message") or f"Job {name} failed")
        return StageState("Failed", reason, f"{what}: {message}", name, None, result)
    if state == "Succeeded":
        # The manifest is written last; a succeeded Job without it lost its upload.
        return StageState(
            "Failed", "ManifestMissing", f"{what}: Job {name} succeeded but wrote no manifest", name
        )
    if report.waiting_reason == "CreateContainerConfigError":
        detail = report.waiting_message or "container config error"
        return StageState("Failed", "ConfigError", f"{what}: {detail}", name)
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


def reconcile(body: dict[str, Any], cluster: ClusterView, settings: Settings) -> Outcome:
    meta, raw_spec = body["metadata"], body.get("spec") or {}
    name, namespace, generation = meta["name"], meta["namespace"], int(meta.get("generation", 1))
    old = dict(body.get("status") or {})
    conditions: list[dict[str, Any]] = [c for c in old.get("conditions", []) if isinstance(c, dict)]
    events: list[tuple[str, str, str]] = []
    status: dict[str, Any] = {"observedGeneration": generation}

    def finish(phase: str, ready: bool | None, reason: str, message: str) -> Outcome:
        nonlocal conditions
        conditions = set_condition(conditions, READY, ready, reason, message, generation)
        status["conditions"] = conditions
        status["phase"] = phase
        if old.get("phase") != phase:
            events.append(("Normal" if phase != "Failed" else "Warning", phase, message))
        return Outcome(status, events)

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

    try:
        export_manifest = artifacts.read_manifest(f"{prefix}/manifest.json")
    except artifacts.S3Unreachable as exc:
        return finish("Pending", False, "S3Unreachable", str(exc))
    export_job = find("export")
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
            "cal.bin written" if export.phase == "Ready" else export.message,
            generation,
        )
    if export_manifest is not None:
        status["artifacts"] = {
            k: v
            for k, v in {
                "etlt": _artifact(export_manifest, "etlt"),
                "onnx": _artifact(export_manifest, "onnx"),
                "calibrationCache": _artifact(export_manifest, "calibration-cache"),
                "tensorfile": _artifact(export_manifest, "tensorfile"),
                "manifest": {"uri": f"{prefix}/manifest.json"},
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

    target_states = []
    for target in spec.targets:
        try:
            manifest_uri = f"{prefix}/targets/{target.name}/manifest.json"
            target_manifest = artifacts.read_manifest(manifest_uri)
        except artifacts.S3Unreachable as exc:
            return finish("Pending", False, "S3Unreachable", str(exc))
        job = find("build", target.name)
        if target_manifest is None and job is None:
            manifest = build_target_job(body, spec, target, key, settings)
            if cluster.create_job(manifest):
                events.append(
                    ("Normal", "BuildStarted", f"created build Job {manifest['metadata']['name']} "
                     f"for target {target.name} ({engine_file_name(spec)})")
                )  # fmt: skip
                running += 1
        state = _observe_stage(
            cluster, namespace, job, target_manifest, f"target {target.name}", settings
        )
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
