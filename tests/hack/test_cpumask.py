"""hack/cpumask/run shows a command the CPU class it is asked for, where every reader looks.

The figures it exists for (int8 against fp32 on x86 without VNNI, issue 32) are
only true if ONNX Runtime and numpy (CPUID) and our own code (/proc/cpuinfo)
all see the masked CPU, and if the kernels really change: each is checked here
on this machine's real CPU. Where the CPU cannot make CPUID fault (no
`cpuid_fault` flag: some AMD CPUs), the tool refuses in words and the masking
checks are skipped with that reason; the refusal itself is checked there.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.checkout import ROOT, python_env

RUN = ROOT / "hack" / "cpumask" / "run"
CAN_FAULT = "cpuid_fault" in Path("/proc/cpuinfo").read_text().split()
needs_fault = pytest.mark.skipif(
    not CAN_FAULT, reason="this CPU has no cpuid_fault flag: CPUID cannot be masked here"
)

#: What a masked process reports: the class our code reads, and numpy's CPUID view.
REPORT = """
from bodypose_exporter.engines.ort.hardware import describe
from numpy._core._multiarray_umath import __cpu_features__ as f
print(describe()["int8InstructionSet"], f["AVX2"], f["AVX512F"], f["AVX512BW"], f["AVX512VNNI"])
"""

#: One u8 x s8 integer matmul timed in the process: the kernel MLAS chose from CPUID.
MATMUL = """
import time, numpy as np, onnxruntime as ort
from onnx import helper, TensorProto as T
g = helper.make_graph([helper.make_node("MatMulInteger", ["A", "B"], ["Y"])], "g",
    [helper.make_tensor_value_info("A", T.UINT8, [256, 1024]),
     helper.make_tensor_value_info("B", T.INT8, [1024, 1024])],
    [helper.make_tensor_value_info("Y", T.INT32, [256, 1024])])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
rng = np.random.default_rng(0)
a = rng.integers(0, 255, (256, 1024), dtype=np.uint8)
b = rng.integers(-127, 127, (1024, 1024), dtype=np.int8)
exact = a.astype(np.int32) @ b.astype(np.int32)
got = s.run(None, {"A": a, "B": b})[0]
print(int(np.abs(got - exact).max()))
"""


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = python_env()
    return subprocess.run(
        [str(RUN), *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


def _python(cpu_class: str | None, code: str) -> str:
    if cpu_class is None:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
            env=python_env(),
        )  # fmt: skip
    else:
        done = _run(cpu_class, "--", sys.executable, "-c", code)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@needs_fault
@pytest.mark.parametrize(
    ("cpu_class", "expected"),
    [
        ("x86-avx2", "x86-avx2 True False False False"),
        ("x86-avx512", "x86-avx512 True True True False"),
    ],
)
def test_the_command_sees_the_class_in_cpuid_and_in_proc_cpuinfo(
    cpu_class: str, expected: str
) -> None:
    assert _python(cpu_class, REPORT) == expected


@needs_fault
def test_a_masked_cpu_runs_the_saturating_kernel() -> None:
    """The proof that ONNX Runtime really changed kernels, not only our label: u8 x s8
    products near the extremes overflow the 16-bit lanes of the kernel used without
    VNNI (hardware.py's docstring), and are exact with VNNI or AMX (32-bit sums)."""
    if _python(None, REPORT).split()[0] not in ("x86-vnni", "x86-amx"):
        pytest.skip("this CPU saturates already: nothing to compare the masked run with")
    assert _python(None, MATMUL) == "0"
    assert int(_python("x86-avx2", MATMUL)) > 0


def test_a_class_it_cannot_show_is_refused_with_the_classes_it_can() -> None:
    done = _run("x86-vnni", "--", "true")
    assert done.returncode == 2
    assert "unknown class 'x86-vnni'" in done.stderr
    assert "x86-avx2|x86-avx512" in done.stderr


def test_without_cpuid_faulting_it_says_so(tmp_path: Path) -> None:
    if CAN_FAULT:
        pytest.skip("this CPU can fault on CPUID; the refusal is checked where it cannot")
    done = _run("x86-avx2", "--", "true")
    assert done.returncode == 1
    assert "no cpuid_fault" in done.stderr
