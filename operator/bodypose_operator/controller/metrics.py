"""Prometheus metrics: exports by phase, stage durations, Jobs running."""

from __future__ import annotations

import contextlib
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

EXPORTS_BY_PHASE = Gauge("bodypose_exports", "BodyPoseExport resources by phase", ["phase"])
STAGE_SECONDS = Histogram(
    "bodypose_stage_duration_seconds",
    "Duration of completed stages, from their manifests",
    ["stage"],
    buckets=(10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600),
)
JOBS_RUNNING = Gauge("bodypose_jobs_running", "Export and build Jobs running", ["namespace"])
RECONCILES = Counter("bodypose_reconciles_total", "Reconcile passes", ["result"])
TARGET_AP = Gauge(
    "bodypose_target_ap",
    "OKS keypoint AP (x 100) of a target's engine on the resource's evaluation set",
    ["namespace", "resource", "target"],
)
REFERENCE_AP = Gauge(
    "bodypose_reference_ap",
    "OKS keypoint AP (x 100) of the FP32 model on the resource's evaluation set",
    ["namespace", "resource"],
)

_phases: dict[str, str] = {}
_jobs: dict[str, int] = {}


def record(resource: str, namespace: str, phase: str, jobs_running: int) -> None:
    """Update the gauges from one resource's latest state."""
    _phases[f"{namespace}/{resource}"] = phase
    _jobs[f"{namespace}/{resource}"] = jobs_running
    _refresh()


_aps: dict[str, set[str]] = {}  # resource -> the targets it has an AP gauge for


def record_ap(resource: str, namespace: str, status: dict[str, Any]) -> None:
    """The AP gauges of one resource from its status (nothing when it has no evaluation)."""
    key = f"{namespace}/{resource}"
    seen = {t["name"]: t["ap"] for t in status.get("targets", []) if "ap" in t}
    for target in _aps.get(key, set()) - set(seen):
        TARGET_AP.remove(namespace, resource, target)
    for target, ap in seen.items():
        TARGET_AP.labels(namespace, resource, target).set(ap)
    _aps[key] = set(seen)
    reference = (status.get("evaluation") or {}).get("ap")
    if reference is not None:
        REFERENCE_AP.labels(namespace, resource).set(reference)


def forget(resource: str, namespace: str) -> None:
    _phases.pop(f"{namespace}/{resource}", None)
    _jobs.pop(f"{namespace}/{resource}", None)
    for target in _aps.pop(f"{namespace}/{resource}", set()):
        TARGET_AP.remove(namespace, resource, target)
    with contextlib.suppress(KeyError):
        REFERENCE_AP.remove(namespace, resource)
    _refresh()


def _refresh() -> None:
    for phase in ("Pending", "Exporting", "Building", "Ready", "Failed"):
        EXPORTS_BY_PHASE.labels(phase).set(sum(p == phase for p in _phases.values()))
    per_ns: dict[str, int] = {}
    for key, n in _jobs.items():
        ns = key.split("/", 1)[0]
        per_ns[ns] = per_ns.get(ns, 0) + n
    for ns, n in per_ns.items():
        JOBS_RUNNING.labels(ns).set(n)
