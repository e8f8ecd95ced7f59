"""How long an engine takes, measured where it runs: batch 1 and the largest batch it takes.

After verification, on the build node, per batch size: warm-up until the
median settles (windows of `SETTLE_WINDOW` runs until one window's median is
within `SETTLE_TOLERANCE` of the window before, or the warm-up budget is
spent: the record says how many warm-up runs and whether it settled), then
timed runs (`RUNS`, fewer on a node where they would take more than
`BUDGET_SECONDS` or the build's `--latency_budget`, never under `MIN_RUNS`;
the record says how many, and the budget),
reported as the 10th, 50th and 90th percentiles in milliseconds, their
spread ((p90 - p10) / median, in percent: a figure whose spread is wide
measured the node's noise as much as the engine) and images per second at
the median (an engine whose largest batch is 1 is timed once: `batchMax` is
`batch1`'s record). `measure_interleaved` times several engines in turns, so
that a change in the node's load falls on all of them alike (the resolution
benchmark and the int8 speed-up check compare fp32 and int8 so), each turn
after a pause and untimed runs that let the other engine's threads go idle.
What is timed is the engine on an already preprocessed batch (no decoding,
resizing or pose grouping), by one of two clocks, and the record says which
(`clock`) and what the figure covers (`includes`), because the two kinds are not comparable:

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
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from bodypose_exporter.engines import cpu_budget
from bodypose_exporter.engines.base import EngineRunner

#: Warm-up runs made before the median is watched at all (the first runs allocate).
WARMUP = 2
#: Warm-up then runs in windows of SETTLE_WINDOW until a window's median is within
#: SETTLE_TOLERANCE of the previous window's, at most WARMUP_SHARE of the budget.
SETTLE_WINDOW = 3
SETTLE_TOLERANCE = 0.05
WARMUP_SHARE = 0.5
#: Timed runs per batch size: RUNS, or fewer (never under MIN_RUNS) where RUNS would take
#: longer than BUDGET_SECONDS on this node: a build Job must not spend minutes timing a
#: slow CPU. The record says how many were made. 40 runs put four on each side of the
#: 10th and 90th percentiles.
RUNS = 40
MIN_RUNS = 5
BUDGET_SECONDS = 10.0


def _budget(budget: float | None) -> float:
    """`budget`, or BUDGET_SECONDS as it is when the timing starts (read then, not when this
    module was imported: the test suite lowers it for its in-process builds)."""
    return BUDGET_SECONDS if budget is None else budget


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


def warm_up(
    timer: Callable[[Array], float], batch: Array, least: int, budget: float
) -> tuple[int, bool, float]:
    """Run until the median settles: the warm-up runs made, whether it settled within
    `budget` seconds, and the last window's median (seconds per run)."""
    made = [timer(batch) for _ in range(max(1, least))]
    previous: float | None = None
    latest = made[-1]
    while sum(made) < budget:
        window = [timer(batch) for _ in range(SETTLE_WINDOW)]
        made += window
        latest = statistics.median(window)
        if previous is not None and abs(latest - previous) <= SETTLE_TOLERANCE * previous:
            return len(made), True, latest
        previous = latest
    return len(made), False, latest


def figures(seconds: list[float], batch_size: int) -> dict[str, Any]:
    """The record of one batch size's timed runs: percentiles in ms, spread, throughput."""
    median = statistics.median(seconds)
    p10, p90 = _percentile(seconds, 10), _percentile(seconds, 90)
    return {
        "batch": batch_size,
        "runs": len(seconds),
        "p10Ms": round(1000 * p10, 3),
        "medianMs": round(1000 * median, 3),
        "p90Ms": round(1000 * p90, 3),
        "spreadPct": round(100 * (p90 - p10) / median, 1) if median > 0 else None,
        "imagesPerSecond": round(batch_size / median, 2) if median > 0 else None,
    }


def _batch(sample: Array, batch_size: int) -> Array:
    return np.ascontiguousarray(np.repeat(sample[None], batch_size, axis=0), np.float32)


def _count(runs: int, budget: float, per_run: float) -> int:
    return max(MIN_RUNS, min(runs, int(budget / max(per_run, 1e-6))))


def measure(
    runner: EngineRunner,
    sample: Array,
    max_batch: int,
    warmup: int = WARMUP,
    runs: int = RUNS,
    budget: float | None = None,
) -> dict[str, Any]:
    """p10, median and p90 at batch 1 and at `max_batch` (sample: one preprocessed image,
    H x W x 3)."""
    budget = _budget(budget)
    timer, kind = _timer(runner)
    record: dict[str, Any] = {
        "timed": "the engine on a preprocessed batch (no image decoding, resizing or pose "
        "grouping)",
        **kind,
        "warmup": warmup,
        # What the number of runs was cut to fit (`bpnet-build --latency_budget`).
        "budgetSeconds": budget,
        "cpuBudget": cpu_budget.budget().record(),
    }
    # Only a runner with a thread pool of its own has threads to name (ONNX Runtime's);
    # a GPU runner's figure does not depend on them.
    if isinstance(getattr(runner, "threads", None), int):
        record["threads"] = runner.threads  # type: ignore[attr-defined]
        record["threadsFrom"] = str(getattr(runner, "threads_from", "not said"))
    for label, batch_size in (("batch1", 1), ("batchMax", max(1, max_batch))):
        if label == "batchMax" and batch_size == 1:
            # The largest batch is batch 1: the same engine on the same input, timed again,
            # would only double the build's timing (up to 15 s on a slow node) for no figure.
            record[label] = dict(record["batch1"])
            continue
        batch = _batch(sample, batch_size)
        warm, settled, per_run = warm_up(timer, batch, warmup, WARMUP_SHARE * budget)
        seconds = [timer(batch) for _ in range(_count(runs, budget, per_run))]
        record[label] = {**figures(seconds, batch_size), "warmupRuns": warm, "settled": settled}
    return record


#: Engines timed together take turns in blocks of `BLOCK_RUNS` timed runs. Before each
#: turn: a pause of `SWITCH_PAUSE_SECONDS` (the other engine's pool threads stop
#: spinning), then untimed runs for at least `SWITCH_SECONDS` (at least one: this
#: engine's threads wake up). Measured below, in `measure_interleaved`.
SWITCH_PAUSE_SECONDS = 0.05
SWITCH_SECONDS = 0.02
BLOCK_RUNS = 3


def measure_interleaved(
    runners: Mapping[str, EngineRunner],
    sample: Array,
    batch_size: int = 1,
    runs: int = RUNS,
    budget: float | None = None,
) -> dict[str, dict[str, Any]]:
    """Several engines timed in turns at one batch size, each warmed up until its median
    settles first: `figures` by name, with its warm-up. The order turns every round, so
    neither engine always runs just after the other.

    Each turn starts with a pause and untimed runs: ONNX Runtime's pool threads spin
    for a while after a run before they sleep (`session.intra_op.allow_spinning`, on by
    default), and a run soon after a switch shares the cores with the other session's
    spinning threads. Measured with two threads on two cores (2-core AMD EPYC), three
    timed runs per turn: the trained sample at 224x320 (9 ms fp32, 3.7 ms int8 alone,
    spread 1-3%), one untimed run before each turn: spread 133% and 120%; untimed runs
    for 50 ms: 70% and 106%; a 50 ms pause then untimed runs for 20 ms: 1% and 2%, the
    medians those alone. Turning spinning off instead would time a session unlike the
    one a server runs (BpNet 224x320 int8 alone 1.19x slower without it)."""
    budget = _budget(budget)
    batch = _batch(sample, batch_size)
    timers = {name: _timer(runner)[0] for name, runner in runners.items()}
    warmed = {
        name: warm_up(timer, batch, WARMUP, WARMUP_SHARE * budget / len(timers))
        for name, timer in timers.items()
    }
    # The budget's cost of one timed run of each, the turns' pauses and untimed runs included.
    switch = SWITCH_PAUSE_SECONDS + SWITCH_SECONDS
    per_run = sum(p + (switch + p) / BLOCK_RUNS for _, _, p in warmed.values())
    count = _count(runs, budget, per_run)
    seconds: dict[str, list[float]] = {name: [] for name in timers}
    order = list(timers)
    for round_ in range(-(-count // BLOCK_RUNS)):
        for name in order if round_ % 2 == 0 else reversed(order):
            _settle_after_switch(timers[name], batch)
            block = min(BLOCK_RUNS, count - len(seconds[name]))
            seconds[name] += [timers[name](batch) for _ in range(block)]
    return {
        name: {**figures(seconds[name], batch_size), "warmupRuns": warmed[name][0],
               "settled": warmed[name][1]}
        for name in timers
    }  # fmt: skip


def _settle_after_switch(timer: Callable[[Array], float], batch: Array) -> None:
    time.sleep(SWITCH_PAUSE_SECONDS)
    spent = timer(batch)
    while spent < SWITCH_SECONDS:
        spent += timer(batch)


#: int8 that buys less than this over FP32 on its build node is published with a warning:
#: on x86 CPUs without VNNI the u8s8 kernels saturate and int8 can be slower than FP32.
WORTHWHILE_SPEEDUP = 1.1


def int8_speedup(
    int8: EngineRunner,
    fp32: EngineRunner,
    sample: Array,
    device: str,
    runs: int = RUNS,
    budget: float | None = None,
) -> tuple[dict[str, Any], str | None]:
    """An int8 artifact against the FP32 model it came from, batch 1, timed in turns
    on this node: the record, and a warning when int8 is not worth its accuracy here."""
    budget = _budget(budget)
    timed = measure_interleaved({"int8": int8, "fp32": fp32}, sample, runs=runs, budget=budget)
    int8_ms, fp32_ms = timed["int8"]["medianMs"], timed["fp32"]["medianMs"]
    ratio = round(fp32_ms / int8_ms, 2) if int8_ms > 0 else 0.0
    record = {
        "int8MedianMs": int8_ms,
        "fp32MedianMs": fp32_ms,
        "ratio": ratio,
        "runs": timed["int8"]["runs"],
        "budgetSeconds": budget,
        "spreadPct": {name: timed[name]["spreadPct"] for name in timed},
        "how": "batch 1, the two models timed in turns after each settled",
    }
    if ratio >= WORTHWHILE_SPEEDUP:
        return record, None
    return record, (
        f"int8 is not faster than fp32 on {device}: int8 {int8_ms:.2f} ms, fp32 "
        f"{fp32_ms:.2f} ms at batch 1 ({ratio:.2f}x, medians of {record['runs']} runs "
        f"each, timed in turns); published all the same: an fp32 target serves this "
        f"pool as fast with the FP32 model's accuracy"
    )
