"""Run an engine over the reference and judge it against the gates."""

from __future__ import annotations

from collections.abc import Mapping

from bodypose_exporter.engines.base import EngineRunner, run_batched
from bodypose_exporter.verification.agreement_figures import agreement
from bodypose_exporter.verification.agreement_gates import Verdict, judge
from bodypose_exporter.verification.reference import Reference


def verify(
    runner: EngineRunner,
    reference: Reference,
    precision: str,
    overrides: Mapping[str, float | None],
) -> Verdict:
    """Figures and verdict (never raises on a failed gate: see `agreement_gates.enforce`)."""
    got = run_batched(runner, reference.inputs)
    return judge(precision, agreement(reference.outputs, got), overrides)
