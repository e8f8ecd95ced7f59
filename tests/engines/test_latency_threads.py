"""A latency figure names the threads ONNX Runtime really ran with, and what the figure covers.

Under `taskset -c 0` the process may use one CPU whatever `os.cpu_count()` says:
the ONNX Runtime session is given one intra-op thread and the record says so,
and why. The model is a small real ONNX graph, timed by real ONNX Runtime.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from bodypose_exporter.engines.ort.runner import OrtRunner
from bodypose_exporter.engines.trt.runner import TensorRTRunner
from bodypose_exporter.verification import latency

ROOT = Path(__file__).resolve().parents[2]


def small_model(path: Path) -> Path:
    """A convolution and a ReLU over NHWC 16x16x3 images, any batch."""
    weight = helper.make_tensor(
        "w", TensorProto.FLOAT, [4, 3, 3, 3], np.random.default_rng(0).random(108).tolist()
    )
    nodes = [
        helper.make_node("Transpose", ["x"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "w"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "small",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 16, 16, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4, 16, 16])],
        [weight],
    )  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


MEASURE = """
import json, sys
from pathlib import Path
import numpy as np
from bodypose_exporter.engines.ort.runner import OrtRunner
from bodypose_exporter.verification import latency
runner = OrtRunner(Path(sys.argv[1]))
sample = np.zeros((16, 16, 3), np.float32)
print(json.dumps(latency.measure(runner, sample, 2, warmup=1, runs=5, budget=0.5)))
"""


@pytest.mark.skipif(shutil.which("taskset") is None, reason="taskset (util-linux) is missing")
def test_the_thread_count_under_taskset_is_the_one_cpu_it_may_use(tmp_path: Path) -> None:
    model = small_model(tmp_path / "small.onnx")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        ["taskset", "-c", "0", sys.executable, "-c", MEASURE, str(model)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout.strip().splitlines()[-1])
    assert record["threads"] == 1
    online = os.cpu_count()
    assert record["threadsFrom"].startswith(f"affinity 1 of {online} CPUs")
    assert record["cpuBudget"]["affinity"] == 1 and record["cpuBudget"]["onlineCpus"] == online
    assert record["clock"] == "wall" and record["includes"] == ["inference", "output conversion"]
    assert record["batch1"]["medianMs"] > 0 and record["batchMax"]["batch"] == 2


def test_without_taskset_the_threads_follow_this_process_budget(tmp_path: Path) -> None:
    runner = OrtRunner(small_model(tmp_path / "small.onnx"))
    try:
        record = latency.measure(runner, np.zeros((16, 16, 3), np.float32), 1, 1, 5, 0.2)
    finally:
        runner.close()
    assert record["threads"] == record["cpuBudget"]["threads"] >= 1
    assert record["threads"] <= len(os.sched_getaffinity(0))
    assert record["threadsFrom"] == record["cpuBudget"]["from"]
    # The same runner asked for 1 thread says who set it.
    asked = OrtRunner(tmp_path / "small.onnx", threads=1)
    assert asked.threads == 1 and asked.threads_from.startswith("set by the caller")
    asked.close()


def test_each_runtime_declares_what_its_figures_include() -> None:
    # TensorRT's own clock: CUDA events around the execution alone, nothing copied.
    assert (TensorRTRunner.clock, TensorRTRunner.timed_includes) == ("cuda-events", ("inference",))
    # TensorRT-RTX through Polygraphy: the wall clock around copies, execution and copies back.
    # Read in a child process: importing its runner switches Polygraphy to TensorRT-RTX for
    # the whole process (engines/trt_rtx/runtime.py), which broke the TensorRT tests that
    # ran after this module in the same pytest process.
    read = subprocess.run(
        [sys.executable, "-c", "from bodypose_exporter.engines.trt_rtx.runner import "
         "TensorRTRTXRunner as R; import json; print(json.dumps(R.run_includes))"],
        capture_output=True, text=True, check=True, env=os.environ.copy(),
    )  # fmt: skip
    assert tuple(json.loads(read.stdout)) == (
        "host-to-device copies", "inference", "device-to-host copies", "output conversion",
    )  # fmt: skip
    assert OrtRunner.run_includes == ("inference", "output conversion")


class _TimedOnItsOwnClock(TensorRTRunner):
    """TensorRT's runner with its CUDA-event timing answered by a fixed figure (no GPU here):
    what the record says of a figure by the runner's own clock."""

    def __init__(self) -> None:
        self.max_batch_size = 4

    def time_inference(self, inputs: np.typing.NDArray[np.float32]) -> float:
        return 0.002 * len(inputs)


def test_a_figure_by_cuda_events_says_so_and_names_no_threads() -> None:
    record = latency.measure(_TimedOnItsOwnClock(), np.zeros((4, 4, 3), np.float32), 4)
    assert record["clock"] == "cuda-events" and record["includes"] == ["inference"]
    assert "execute_async_v3" in record["how"] and "threads" not in record
    assert record["batchMax"]["medianMs"] == 8.0
