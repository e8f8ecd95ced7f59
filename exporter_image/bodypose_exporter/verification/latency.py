"""How long an engine takes, measured where it runs: batch 1 and the largest batch it takes.

After verification, on the build node: warm-up runs, then timed runs per
batch size (`RUNS`, fewer on a node where they would take more than
`BUDGET_SECONDS`, never under `MIN_RUNS`; the record says how many),
reported as median and 90th percentile in milliseconds and images per
second at the median. What is timed is the
engine alone on an already preprocessed batch (no decoding, resizing or
pose grouping), with the runtime's own clock where it has one
(`EngineRunner.time_inference`, TensorRT's: CUDA events around
`execute_async_v3`) and the wall clock around `run` otherwise (ONNX
Runtime's, at its session's thread count, which the record names). A
runner that cannot run here is never timed: the build records why, and no
number.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from bodypose_exporter.engines.base import EngineRunner

WARMUP = 2
#: Timed runs per batch size: RUNS, or fewer (never under MIN_RUNS) where RUNS would take
#: longer than BUDGET_SECONDS on this node: a build Job must not spend minutes timing a
#: slow CPU. The record says how many were made.
RUNS = 20
MIN_RUNS = 5
BUDGET_SECONDS = 10.0

Array = npt.NDArray[np.float32]


def _timer(runner: EngineRunner) -> tuple[Callable[[Array], float], str]:
    """The runner's own clock (seconds per inference) where it has one, else the wall clock."""
    own = getattr(runner, "time_inference", None)
    if callable(own):
        return own, str(getattr(runner, "clock", "the runtime's own"))

    def wall(batch: Array) -> float:
        started = time.perf_counter()
        runner.run(batch)
        return time.perf_counter() - started

    return wall, "wall clock around run()"


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def measure(
    runner: EngineRunner,
    sample: Array,
    max_batch: int,
    warmup: int = WARMUP,
    runs: int = RUNS,
    budget: float = BUDGET_SECONDS,
) -> dict[str, Any]:
    """Median and p90 at batch 1 and at `max_batch` (sample: one preprocessed image, H x W x 3)."""
    timer, clock = _timer(runner)
    record: dict[str, Any] = {
        "timed": "the engine alone on a preprocessed batch (no pre- or post-processing)",
        "clock": clock,
        "warmup": warmup,
        "threads": getattr(runner, "threads", None) or os.cpu_count(),
    }
    for label, batch_size in (("batch1", 1), ("batchMax", max(1, max_batch))):
        batch = np.ascontiguousarray(np.repeat(sample[None], batch_size, axis=0), np.float32)
        warm = [timer(batch) for _ in range(max(1, warmup))]
        count = max(MIN_RUNS, min(runs, int(budget / max(warm[-1], 1e-6))))
        seconds = [timer(batch) for _ in range(count)]
        median = statistics.median(seconds)
        record[label] = {
            "batch": batch_size,
            "runs": count,
            "medianMs": round(1000 * median, 3),
            "p90Ms": round(1000 * _percentile(seconds, 90), 3),
            "imagesPerSecond": round(batch_size / median, 2) if median > 0 else None,
        }
    return record
