"""Prometheus metrics: exports by phase, stage durations, Jobs running."""

from __future__ import annotations

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

_phases: dict[str, str] = {}
_jobs: dict[str, int] = {}


def record(resource: str, namespace: str, phase: str, jobs_running: int) -> None:
    """Update the gauges from one resource's latest state."""
    _phases[f"{namespace}/{resource}"] = phase
    _jobs[f"{namespace}/{resource}"] = jobs_running
    _refresh()


def forget(resource: str, namespace: str) -> None:
    _phases.pop(f"{namespace}/{resource}", None)
    _jobs.pop(f"{namespace}/{resource}", None)
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
