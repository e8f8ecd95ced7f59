"""Build one engine from local files and judge it: the build stage's build-and-verify step.

`build_and_verify(EngineJob)` builds with the chosen backend, runs the engine over
the reference (unless the backend builds ahead of time and says this pod cannot:
`capabilities.BuiltAheadOfTime`, then the engine is built, not run), applies the
precision's gates (`verification`) and, for the plain engine that passed, times it
on this node (`verification.latency`) and, for an int8 artifact whose speed depends
on the CPU's int8 kernels, against the FP32 model in turns (a warning where
int8 is not worth it here). A backend whose first build trades accuracy for speed
(`capabilities.FallsBackOnFailedGates`) builds once more where that engine fails its
gates, with the reason among the warnings. Its result, `VerifiedEngine`, says which graph the
engine came from (`Graph`) and what the build updated (`Updated`: the timing cache,
a cal.bin calibrated here), so the steps after it never read the backend's own words
for these.

No S3 here: the files are the fetch step's local copies.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bodypose_exporter.engines import registry
from bodypose_exporter.engines.base import (
    BuildRequest,
    BuiltEngine,
    CompatibilityRecord,
    EngineBackend,
    Graph,
)
from bodypose_exporter.engines.capabilities import (
    BuiltAheadOfTime,
    FallsBackOnFailedGates,
    Int8InstructionSets,
)
from bodypose_exporter.verification import latency as latencies
from bodypose_exporter.verification.agreement_gates import Verdict
from bodypose_exporter.verification.reference import Reference
from bodypose_exporter.verification.verify import verify

log = logging.getLogger(__name__)


class Updated(enum.Enum):
    """A file the build wrote into, to go back where it came from."""

    TIMING_CACHE = "timing-cache"
    CALIBRATION_CACHE = "calibration-cache"  # the cal.bin TensorRT calibrated itself


@dataclass(frozen=True)
class EngineJob:
    """One engine to build and verify."""

    backend: EngineBackend
    request: BuildRequest
    reference: Reference
    gates: Mapping[str, float | None]
    #: The SDK-compatible engine (`stages.deploy`): timed as `buildDeploy`/`verifyDeploy`,
    #: its latency never measured.
    deploy: bool = False
    #: Seconds each latency figure may take on this node (`verification.latency`'s
    #: budget); None: its default, BUDGET_SECONDS.
    latency_budget: float | None = None


@dataclass(frozen=True)
class VerifiedEngine:
    """A built engine, how it agreed with the reference, and what it came from and updated."""

    built: BuiltEngine
    verdict: Verdict
    graph: Graph
    updated: frozenset[Updated]
    reference: str  # where the reference came from, as the manifest says it
    #: The plain engine's latency on this node, or why it was not measured; None for a
    #: failed engine and for the deploy one.
    latency: dict[str, Any] | None
    timings: Mapping[str, float]  # seconds: build[Deploy], verify[Deploy], latency
    #: int8 CPU artifacts: int8 against the FP32 model on this node (`latency.int8_speedup`).
    speedup: dict[str, Any] | None = None
    #: What the build found worth knowing that did not stop it (published all the same).
    warnings: tuple[str, ...] = ()
    #: The compatibility record of the engine as built, where the build fell back to
    #: another request than the target's (`capabilities.FallsBackOnFailedGates`).
    record: CompatibilityRecord | None = None


def _updated(request: BuildRequest, graph: Graph) -> frozenset[Updated]:
    updated = set()
    if request.timing_cache is not None and request.timing_cache.exists():
        updated.add(Updated.TIMING_CACHE)
    cal = request.calibration_cache
    if graph is Graph.TENSORFILE and cal is not None and cal.exists():
        updated.add(Updated.CALIBRATION_CACHE)
    return frozenset(updated)


@contextmanager
def _timed(timings: dict[str, float], step: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[step] = round(time.perf_counter() - start, 3)


def build_and_verify(job: EngineJob) -> VerifiedEngine:
    """Build one engine and judge it against the job's reference (module docstring)."""
    backend, which = job.backend, "Deploy" if job.deploy else ""
    precision, _ = backend.facts.built_precision(job.request.options.precision)  # computes in
    timings: dict[str, float] = {}
    with _timed(timings, f"build{which}"):
        built = backend.build(job.request)
    log.info("built the %s %s %sengine in %.1f s", precision, backend.facts.name,
             "deploy " if which else "", timings[f"build{which}"])  # fmt: skip
    graph = built.graph  # the backend says it (`engines.base.Graph`)
    not_run = (
        backend.not_run_reason(built.hardware) if isinstance(backend, BuiltAheadOfTime) else None
    )
    latency: dict[str, Any] | None = None
    speedup: tuple[dict[str, Any] | None, str | None] = (None, None)
    if not_run is not None:
        log.info("built, not run: %s", not_run)
        if not job.deploy:
            latency = {"measured": False, "reason": not_run}
        verdict = Verdict(precision, {}, {}, (), not_run=not_run)
    else:
        verdict, latency, speedup = _verify(job, built, precision, timings)
    warnings: tuple[str, ...] = ()
    as_built = None
    fallback = _fallback(job, verdict)
    if fallback is not None:
        request, why = fallback
        warnings = (f"{why} ({'; '.join(verdict.failures)})",)
        log.warning("%s", warnings[0])
        job = dataclasses.replace(job, request=request)
        with _timed(timings, f"build{which}Fallback"):
            built = backend.build(request)
        graph = built.graph
        verdict, latency, speedup = _verify(job, built, precision, timings)
        as_built = backend.target(request.options, backend.describe())
    updated = _updated(job.request, graph)
    record, warning = speedup
    return VerifiedEngine(
        built, verdict, graph, updated, job.reference.source, latency, timings, record,
        warnings + (() if warning is None else (warning,)), as_built,
    )  # fmt: skip


def _fallback(job: EngineJob, verdict: Verdict) -> tuple[BuildRequest, str] | None:
    """The backend's other request for an engine that ran and failed its gates, if any."""
    if verdict.passed or verdict.not_run or not isinstance(job.backend, FallsBackOnFailedGates):
        return None
    return job.backend.fallback_request(job.request)


def _verify(
    job: EngineJob, built: BuiltEngine, precision: str, timings: dict[str, float]
) -> tuple[Verdict, dict[str, Any] | None, tuple[dict[str, Any] | None, str | None]]:
    """Run the engine over the reference, gate it, and time the plain one that passed."""
    which = "Deploy" if job.deploy else ""
    timed = None
    speedup: tuple[dict[str, Any] | None, str | None] = (None, None)
    with _timed(timings, f"verify{which}"):
        runner = job.backend.load(built.path)
        try:
            verdict = verify(runner, job.reference, precision, dict(job.gates))
            if verdict.passed and not job.deploy:
                timed = _time(runner, job, built, timings)
                speedup = _against_fp32(runner, job, precision, timed["device"], timings)
        finally:
            runner.close()
    log.info(
        "verification on %s: %s (%s)",
        job.reference.source,
        ", ".join(f"{k} {v:.4g}" for k, v in verdict.figures.items()),
        "passed" if verdict.passed else "FAILED",
    )
    return verdict, timed, speedup


def _against_fp32(
    runner: Any, job: EngineJob, precision: str, device: str, timings: dict[str, float]
) -> tuple[dict[str, Any] | None, str | None]:
    """An int8 artifact built for a CPU class (its speed is the CPU's int8 kernels') timed
    against the FP32 model on the reference runtime; nothing for other artifacts."""
    if precision != "int8" or not isinstance(job.backend.facts, Int8InstructionSets):
        return None, None
    with _timed(timings, "int8Speedup"):
        fp32 = registry.backend_by_name(registry.ONNX_REFERENCE).load(job.request.onnx_path)
        try:
            record, warning = latencies.int8_speedup(
                runner, fp32, job.reference.inputs[0], device, budget=job.latency_budget
            )
        finally:
            fp32.close()
    log.info("int8 against fp32 on %s: %.2f ms against %.2f ms at batch 1 (%.2fx)", device,
             record["int8MedianMs"], record["fp32MedianMs"], record["ratio"])  # fmt: skip
    if warning is not None:
        log.warning("%s", warning)
    return record, warning


def _time(
    runner: Any, job: EngineJob, built: BuiltEngine, timings: dict[str, float]
) -> dict[str, Any]:
    """The verified engine's latency on this node (`verification.latency`), logged."""
    with _timed(timings, "latency"):
        timed = latencies.measure(
            runner, job.reference.inputs[0], job.request.options.max_batch_size,
            budget=job.latency_budget,
        )  # fmt: skip
    hardware = built.hardware
    timed["device"] = str(hardware.get("gpuName") or hardware.get("cpuModel") or "unknown")
    log.info("latency on %s: batch 1 median %.2f ms (p90 %.2f), batch %d median %.2f ms, "
             "%.1f images/s", timed["device"], timed["batch1"]["medianMs"],
             timed["batch1"]["p90Ms"], timed["batchMax"]["batch"],
             timed["batchMax"]["medianMs"], timed["batchMax"]["imagesPerSecond"] or 0)  # fmt: skip
    return timed
