"""The phase and Jobs gauges, kept a resource at a time (controller/metrics.py)."""

from __future__ import annotations

from bodypose_operator.controller import metrics


def phase_count(phase: str) -> float:
    return float(metrics.EXPORTS_BY_PHASE.labels(phase)._value.get())


def jobs(namespace: str) -> float:
    return float(metrics.JOBS_RUNNING.labels(namespace)._value.get())


def test_phases_and_jobs_follow_each_resource_and_its_removal() -> None:
    before = {phase: phase_count(phase) for phase in metrics.PHASES}
    metrics.record("a", "gauges-1", "Exporting", 1)
    metrics.record("b", "gauges-1", "Building", 3)
    metrics.record("c", "gauges-2", "Building", 2)
    assert phase_count("Exporting") == before["Exporting"] + 1
    assert phase_count("Building") == before["Building"] + 2
    assert (jobs("gauges-1"), jobs("gauges-2")) == (4, 2)

    metrics.record("a", "gauges-1", "Building", 3)  # the export done, its builds started
    metrics.record("b", "gauges-1", "Ready", 0)
    assert phase_count("Exporting") == before["Exporting"]
    assert phase_count("Building") == before["Building"] + 2
    assert phase_count("Ready") == before["Ready"] + 1
    assert jobs("gauges-1") == 3

    for name, namespace in (("a", "gauges-1"), ("b", "gauges-1"), ("c", "gauges-2")):
        metrics.forget(name, namespace)
    metrics.forget("never-recorded", "gauges-3")
    assert {phase: phase_count(phase) for phase in metrics.PHASES} == before
    # A namespace whose last resource went shows no Jobs, not its last count.
    assert (jobs("gauges-1"), jobs("gauges-2")) == (0, 0)
