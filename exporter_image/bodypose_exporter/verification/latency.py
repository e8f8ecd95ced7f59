"""How long an engine takes, measured where it runs: batch 1 and the largest batch it takes.

After verification, on the build node: warm-up runs, then a fixed number of
timed runs per batch size, reported as median and 90th percentile in
milliseconds and images per second at the median. What is timed is the
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

WARMUP = 3
RUNS = 20

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
    runner: EngineRunner, sample: Array, max_batch: int, warmup: int = WARMUP, runs: int = RUNS
) -> dict[str, Any]:
    """Median and p90 at batch 1 and at `max_batch` (sample: one preprocessed image, H x W x 3)."""
    timer, clock = _timer(runner)
    record: dict[str, Any] = {
        "timed": "the engine alone on a preprocessed batch (no pre- or post-processing)",
        "clock": clock,
        "warmup": warmup,
        "runs": runs,
        "threads": getattr(runner, "threads", None) or os.cpu_count(),
    }
    for label, batch_size in (("batch1", 1), ("batchMax", max(1, max_batch))):
        batch = np.ascontiguousarray(np.repeat(sample[None], batch_size, axis=0), np.float32)
        for _ in range(warmup):
            timer(batch)
        seconds = [timer(batch) for _ in range(runs)]
        median = statistics.median(seconds)
        record[label] = {
            "batch": batch_size,
            "medianMs": round(1000 * median, 3),
            "p90Ms": round(1000 * _percentile(seconds, 90), 3),
            "imagesPerSecond": round(batch_size / median, 2) if median > 0 else None,
        }
    return record
