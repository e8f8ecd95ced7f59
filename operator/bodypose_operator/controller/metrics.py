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
TARGET_LATENCY = Gauge(
    "bodypose_target_latency_milliseconds",
    "Median latency of a target's engine on its build node (the engine alone)",
    ["namespace", "resource", "target", "batch"],
)
REFERENCE_AP = Gauge(
    "bodypose_reference_ap",
    "OKS keypoint AP (x 100) of the FP32 model on the resource's evaluation set",
    ["namespace", "resource"],
)

PHASES = ("Pending", "Exporting", "Building", "Ready", "Failed")

# Each resource's last recorded phase and running Jobs, and the totals the gauges show,
# kept up to date a resource at a time: summing every resource on each record made a
# burst of N resources cost N^2 (7 % of the operator's CPU at N=500, profiled).
_phases: dict[str, str] = {}
_jobs: dict[str, int] = {}
_by_phase: dict[str, int] = dict.fromkeys(PHASES, 0)
_jobs_by_ns: dict[str, int] = {}


def record(resource: str, namespace: str, phase: str, jobs_running: int) -> None:
    """Update the gauges from one resource's latest state."""
    _set(f"{namespace}/{resource}", namespace, phase, jobs_running)


_aps: dict[str, set[str]] = {}  # resource -> the targets it has an AP gauge for
_latencies: dict[str, set[tuple[str, str]]] = {}  # resource -> (target, batch) gauges


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
    timed = {(t["name"], batch): figures["median"] for t in status.get("targets", [])
             for batch, figures in (t.get("latencyMs") or {}).items()}  # fmt: skip
    for target, batch in _latencies.get(key, set()) - set(timed):
        TARGET_LATENCY.remove(namespace, resource, target, batch)
    for (target, batch), median in timed.items():
        TARGET_LATENCY.labels(namespace, resource, target, batch).set(median)
    _latencies[key] = set(timed)


def forget(resource: str, namespace: str) -> None:
    _set(f"{namespace}/{resource}", namespace, None, 0)
    for target in _aps.pop(f"{namespace}/{resource}", set()):
        TARGET_AP.remove(namespace, resource, target)
    for target, batch in _latencies.pop(f"{namespace}/{resource}", set()):
        TARGET_LATENCY.remove(namespace, resource, target, batch)
    with contextlib.suppress(KeyError):
        REFERENCE_AP.remove(namespace, resource)


def _set(key: str, namespace: str, phase: str | None, jobs_running: int) -> None:
    """Move one resource's phase and Jobs in the totals (`phase` None: it is gone)."""
    old = _phases.pop(key, None)
    if old is not None and old in _by_phase:
        _by_phase[old] -= 1
    if phase is not None:
        _phases[key] = phase
        if phase in _by_phase:
            _by_phase[phase] += 1
    for counted in set(PHASES) & {old, phase}:
        EXPORTS_BY_PHASE.labels(counted).set(_by_phase[counted])
    delta = jobs_running - _jobs.pop(key, 0)
    if phase is not None:
        _jobs[key] = jobs_running
    if delta or namespace not in _jobs_by_ns:
        _jobs_by_ns[namespace] = _jobs_by_ns.get(namespace, 0) + delta
        JOBS_RUNNING.labels(namespace).set(_jobs_by_ns[namespace])
