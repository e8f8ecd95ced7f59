"""Each exporter-side benchmark runs, in its quickest form, to the line that states its goal.

Why: a benchmark that no test runs breaks unseen (benchmarks/engines.py still
looked for a `.engine` file after onnxruntime artifacts became `.onnx`). These
check that each command finishes and prints its figures and its goal line;
never a timing (the figures are for a person comparing ratios, on a quiet
machine). The operator benchmarks start a control plane of their own and are
run by `make bench-operator` / `make bench-fanout`.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.checkout import ROOT, python_env


def run_benchmark(script: str, *args: str) -> str:
    env = python_env(TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        env=env, capture_output=True, text=True, timeout=900, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, f"{script} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.parametrize(
    ("script", "args", "expected"),
    [
        ("engines.py", ("--resolutions", "224x320", "--runs", "2", "--calibration-images", "4"),
         ("int8 class", "224x320 threads default: fp32", "speedup", "goal (threads default)")),
        ("calibration.py", ("--n", "4", "--ort-n", "4", "--height", "224", "--width", "320"),
         ("N=   4  forward", "ours", "ORT entropy", "goal: N=4 ours <= 1.1x forward passes",
          "goal: N=4 ours peak <= +600 MB", "goal: N=4 cal.bin byte-identical")),
        ("accuracy.py", ("--images", "24"),
         ("FP32 ONNX (reference)", "int8, blank calibration", "goal: fp32, fp16 and int8")),
    ],
    ids=["engines", "calibration", "accuracy"],
)  # fmt: skip
def test_benchmark_prints_its_figures_and_goal(
    script: str, args: tuple[str, ...], expected: tuple[str, ...]
) -> None:
    out = run_benchmark(script, *args)
    missing = [line for line in expected if line not in out]
    assert not missing, f"{script} printed no {missing}:\n{out}"


def test_accuracy_benchmark_refuses_too_few_images_for_its_calibration() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "accuracy.py"), "--images", "8"],
        env=python_env(), capture_output=True, text=True,
        timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--images 8: at least 24; the sample draws as many calibration images" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_resolution_table_says_where_a_step_is_within_the_noise() -> None:
    from benchmarks.resolutions import monotonic, spread

    def cell(ms: float, p10: float, p90: float) -> dict[str, float]:
        return {"ms": ms, "p10": p10, "p90": p90}

    small, mid, large = (224, 320), (288, 384), (320, 448)
    growing = [(small, cell(10, 9, 11)), (mid, cell(14, 13, 15)), (large, cell(18, 17, 19))]
    assert monotonic("fp32", growing) == "monotonic in the pixels, fp32: yes"
    noisy = [(small, cell(10, 9, 11)), (mid, cell(14, 12, 20)), (large, cell(13, 12.5, 14))]
    assert monotonic("int8", noisy) == (
        "monotonic in the pixels, int8: no, 320x448 faster than 288x384 "
        "(ranges overlap: within the noise)"
    )
    apart = [(small, cell(10, 9.5, 10.5)), (mid, cell(8, 7.5, 8.5))]
    assert monotonic("fp32", apart).endswith("288x384 faster than 224x320 (ranges apart)")
    figures = {"medianMs": 12.34, "p10Ms": 12.0, "p90Ms": 13.1, "spreadPct": 8.9, "runs": 60}
    assert spread(figures) == "12.3 ms (p10 12.0-p90 13.1, spread 9%, 60 runs)"
