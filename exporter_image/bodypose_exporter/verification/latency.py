"""How long an engine takes, measured where it runs: batch 1 and the largest batch it takes.

After verification, on the build node: warm-up runs, then timed runs per
batch size (`RUNS`, fewer on a node where they would take more than
`BUDGET_SECONDS`, never under `MIN_RUNS`; the record says how many),
reported as median and 90th percentile in milliseconds and images per
second at the median. What is timed is the engine on an already
preprocessed batch (no decoding, resizing or pose grouping), by one of two
clocks, and the record says which (`clock`) and what the figure covers
(`includes`), because the two kinds are not comparable:

- `cuda-events`: the runner's own clock (`EngineRunner.time_inference`,
  TensorRT's: CUDA events around `execute_async_v3`, the input already on
  the device, the outputs left there): `includes` ["inference"];
- `wall`: `time.perf_counter` around the runner's `run` (ONNX Runtime's, and
  TensorRT-RTX's through Polygraphy, which copies to and from the device):
  `includes` what the runner declares (`run_includes`).

The record also names the slice of the machine it was measured on
(`cpuBudget`: affinity, cgroup quota) and, for a runner with a thread pool,
the threads it ran with and where that number came from (`threads`,
`threadsFrom`). A runner that cannot run here is never timed: the build
records why, and no number.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from bodypose_exporter.engines import cpu_budget
from bodypose_exporter.engines.base import EngineRunner

WARMUP = 2
#: Timed runs per batch size: RUNS, or fewer (never under MIN_RUNS) where RUNS would take
#: longer than BUDGET_SECONDS on this node: a build Job must not spend minutes timing a
#: slow CPU. The record says how many were made.
RUNS = 20
MIN_RUNS = 5
BUDGET_SECONDS = 10.0

Array = npt.NDArray[np.float32]


#: The two clocks (`clock` in the record; a runner's own clock names itself, TensorRT's
#: CUDA_EVENTS).
CUDA_EVENTS = "cuda-events"
WALL = "wall"
#: What a wall-clock figure covers when the runner does not say: all of its `run`.
UNDECLARED = ("everything the runner's run() does",)


def _timer(runner: EngineRunner) -> tuple[Callable[[Array], float], dict[str, Any]]:
    """The runner's own clock (seconds per inference) where it has one, else the wall clock
    around `run`; and what a figure by it is (`clock`, `includes`, `how`)."""
    own = getattr(runner, "time_inference", None)
    if callable(own):
        return own, {
            "clock": str(getattr(runner, "clock", "the runtime's own")),
            "includes": list(getattr(runner, "timed_includes", ("not said",))),
            "how": str(getattr(runner, "timed_how", "the runner's time_inference()")),
        }

    def wall(batch: Array) -> float:
        started = time.perf_counter()
        runner.run(batch)
        return time.perf_counter() - started

    return wall, {
        "clock": WALL,
        "includes": list(getattr(runner, "run_includes", UNDECLARED)),
        "how": "time.perf_counter() around the runner's run()",
    }


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
    timer, kind = _timer(runner)
    record: dict[str, Any] = {
        "timed": "the engine on a preprocessed batch (no image decoding, resizing or pose "
        "grouping)",
        **kind,
        "warmup": warmup,
        "cpuBudget": cpu_budget.budget().record(),
    }
    # Only a runner with a thread pool of its own has threads to name (ONNX Runtime's);
    # a GPU runner's figure does not depend on them.
    if isinstance(getattr(runner, "threads", None), int):
        record["threads"] = runner.threads  # type: ignore[attr-defined]
        record["threadsFrom"] = str(getattr(runner, "threads_from", "not said"))
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
