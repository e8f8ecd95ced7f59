"""A latency figure a person can trust: warmed up until it settles, its spread stated.

The runners here are stand-ins with a scripted clock (a runner's own clock, as
TensorRT's CUDA events are read), so that what the record says can be checked
exactly: how many warm-up runs the median took to settle, the 10th/50th/90th
percentiles and their spread, and that engines timed together alternate.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import pytest

from bodypose_exporter.verification import latency

SAMPLE = np.zeros((4, 4, 3), np.float32)


class Scripted:
    """A runner whose own clock answers the scripted seconds in order (then the last)."""

    clock = "cuda-events"
    timed_includes = ("inference",)
    timed_how = "scripted"

    def __init__(self, seconds: list[float], log: list[str] | None = None, name: str = "") -> None:
        self.max_batch_size = 4
        self._seconds: Iterator[float] = iter(seconds)
        self._last = seconds[-1]
        self._log, self._name = log, name
        self.calls = 0

    def time_inference(self, inputs: npt.NDArray[np.float32]) -> float:
        self.calls += 1
        if self._log is not None:
            self._log.append(self._name)
        self._last = next(self._seconds, self._last)
        return self._last

    def run(self, inputs: npt.NDArray[np.float32]) -> dict[str, npt.NDArray[np.float32]]:
        raise AssertionError("timed by its own clock")

    def close(self) -> None:
        pass


def test_warm_up_goes_on_until_two_windows_agree_and_says_so() -> None:
    # A cold engine: slow first runs, then a steady 10 ms. Two minimum runs, then windows
    # of three: 40, 30, 20 ms windows differ; 10 ms twice agree.
    cold = [0.08, 0.06, 0.04, 0.04, 0.04, 0.03, 0.03, 0.03, 0.02, 0.02, 0.02] + [0.01] * 6
    made, settled, per_run = latency.warm_up(Scripted(cold).time_inference, SAMPLE, 2, 60.0)
    assert (made, settled, per_run) == (17, True, 0.01)


def test_a_median_that_never_settles_stops_at_the_budget_and_says_it_did_not() -> None:
    drifting = [0.01 * 1.5**i for i in range(40)]
    made, settled, _ = latency.warm_up(Scripted(drifting).time_inference, SAMPLE, 2, 1.0)
    assert not settled and sum(drifting[:made]) >= 1.0 and made < 40


def test_the_record_gives_p10_median_p90_and_their_spread() -> None:
    seconds = [0.001 * n for n in range(1, 11)]  # 1..10 ms
    figures = latency.figures(seconds, 2)
    assert figures == {
        "batch": 2, "runs": 10, "p10Ms": 1.9, "medianMs": 5.5, "p90Ms": 9.1,
        "spreadPct": 130.9, "imagesPerSecond": 363.64,
    }  # fmt: skip


def test_each_batch_size_records_its_warm_up_and_spread() -> None:
    runner = Scripted([0.05, 0.05] + [0.002] * 200)
    record = latency.measure(runner, SAMPLE, 4, runs=12)  # type: ignore[arg-type]
    for key in ("batch1", "batchMax"):
        timed = record[key]
        assert timed["settled"] is True and timed["warmupRuns"] >= 8
        assert timed["runs"] == 12 and timed["spreadPct"] == 0.0
        assert timed["p10Ms"] == timed["medianMs"] == timed["p90Ms"] == 2.0
    assert record["warmup"] == latency.WARMUP


def test_an_engine_whose_largest_batch_is_one_is_timed_once() -> None:
    once = Scripted([0.002] * 400)
    record = latency.measure(once, SAMPLE, 1, runs=12)  # type: ignore[arg-type]
    assert record["batchMax"] == record["batch1"] and record["batch1"]["batch"] == 1
    twice = Scripted([0.002] * 400)
    latency.measure(twice, SAMPLE, 2, runs=12)  # type: ignore[arg-type]
    # Warm-up and timed runs of batch 1 only, against batch 1 then batch 2.
    assert once.calls == record["batch1"]["warmupRuns"] + 12 and twice.calls > once.calls


def test_engines_timed_together_take_turns_and_keep_their_own_figures() -> None:
    order: list[str] = []
    runners = {
        "fp32": Scripted([0.004] * 500, order, "fp32"),
        "int8": Scripted([0.001] * 500, order, "int8"),
    }
    timed = latency.measure_interleaved(runners, SAMPLE, runs=6)  # type: ignore[arg-type]
    assert timed["fp32"]["medianMs"] == 4.0 and timed["int8"]["medianMs"] == 1.0
    assert timed["fp32"]["runs"] == timed["int8"]["runs"] == 6
    warm = timed["fp32"]["warmupRuns"] + timed["int8"]["warmupRuns"]
    # After each one's warm-up: turns of untimed runs for 20 ms (5 of 4 ms, 20 of 1 ms)
    # and three timed runs, the order turning every round.
    fp32_turn, int8_turn = ["fp32"] * (5 + 3), ["int8"] * (20 + 3)
    assert order[warm:] == fp32_turn + int8_turn * 2 + fp32_turn


class Spinning(Scripted):
    """A runner whose first run after another engine's is slower: what ONNX Runtime's
    spinning pool threads do to the session that runs next (`measure_interleaved`)."""

    def __init__(self, fast: float, log: list[str], name: str) -> None:
        super().__init__([fast], log, name)
        self.fast = fast

    def time_inference(self, inputs: npt.NDArray[np.float32]) -> float:
        after_other = bool(self._log) and self._log[-1] != self._name
        super().time_inference(inputs)
        return self.fast * 1.5 if after_other else self.fast


def test_no_timed_run_follows_another_engines_run() -> None:
    order: list[str] = []
    runners = {"fp32": Spinning(0.004, order, "fp32"), "int8": Spinning(0.001, order, "int8")}
    timed = latency.measure_interleaved(runners, SAMPLE, runs=7)  # type: ignore[arg-type]
    for name, fast_ms in (("fp32", 4.0), ("int8", 1.0)):
        assert timed[name]["runs"] == 7
        assert timed[name]["p10Ms"] == timed[name]["medianMs"] == timed[name]["p90Ms"] == fast_ms


@pytest.mark.parametrize("runs", [1, 3])
def test_never_fewer_timed_runs_than_the_least_the_record_can_bound(runs: int) -> None:
    record = latency.measure(Scripted([0.001] * 400), SAMPLE, 1, runs=runs)  # type: ignore[arg-type]
    assert record["batch1"]["runs"] == latency.MIN_RUNS


def test_int8_no_faster_than_fp32_says_so_with_both_figures() -> None:
    slow = latency.int8_speedup(
        Scripted([0.011] * 500), Scripted([0.010] * 500), SAMPLE, "Intel Xeon (no VNNI)", runs=8
    )  # type: ignore[arg-type]
    record, warning = slow
    assert (record["int8MedianMs"], record["fp32MedianMs"], record["ratio"]) == (11.0, 10.0, 0.91)
    assert record["runs"] == 8 and record["spreadPct"] == {"int8": 0.0, "fp32": 0.0}
    assert warning == (
        "int8 is not faster than fp32 on Intel Xeon (no VNNI): int8 11.00 ms, fp32 10.00 ms "
        "at batch 1 (0.91x, medians of 8 runs each, timed in turns); published all "
        "the same: an fp32 target serves this pool as fast with the FP32 model's accuracy"
    )
    # Where the int8 kernels do not saturate: the figures, no warning.
    record, warning = latency.int8_speedup(
        Scripted([0.003] * 500), Scripted([0.010] * 500), SAMPLE, "Intel Xeon (VNNI)", runs=8
    )  # type: ignore[arg-type]
    assert record["ratio"] == 3.33 and warning is None
