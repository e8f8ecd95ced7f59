"""The CPU an ONNX Runtime artifact was built on: model name and the instruction sets that matter.

Read from /proc/cpuinfo (`model name` and `flags` on x86, `Features` on Arm).
The sets listed are those ONNX Runtime's MLAS kernels dispatch on for this
network: FP32 convolutions (AVX2/FMA, AVX-512F) and int8 ones (AVX-VNNI,
AVX512-VNNI, AMX-INT8 on x86; dot-product and i8mm on Arm). An int8 artifact
is only fast where one of the int8 sets is present.

The int8 class (`int8_instruction_set`) also decides how an int8 artifact
must be built to be right, not only fast. On x86 without VNNI (AVX2,
AVX-512F/BW), MLAS multiplies uint8 activations by int8 weights with
`vpmaddubsw`, which adds each pair of products into a 16-bit lane with
saturation; with real 8-bit weights those sums overflow and the results
drift (ONNX Runtime, "Quantize ONNX models", the data-type and reduce_range
notes: https://onnxruntime.ai/docs/performance/model-optimizations/quantization.html;
oneDNN, "Nuances of int8 computations":
https://oneapi-src.github.io/oneDNN/dev_guide_int8_computations.html).
VNNI (`vpdpbusd`) and AMX accumulate in 32 bits, and MLAS's Arm kernels
widen each product before adding, so neither saturates. Where the class
saturates, the artifact's weights are int7 (`int8_weights`): int8 within
[-64, 64], ONNX Runtime's `reduce_range`, so that two products of 255 x 64
fit a 16-bit lane and the fast u8 x s8 kernels stay exact. An int7 artifact
that fails its gates (a bit less of each weight) is built again with uint8
weights (`FALLBACK_WEIGHTS`): MLAS's u8u8 path widens to 16 bits before
multiplying and cannot overflow, but is slower.

Measured on a 2-core AMD EPYC with AVX2 and no VNNI (the demo's untrained
sample at 320x448, reference.npz; `tests/engines/test_int8_cpu.py` repeats
the comparison on whatever CPU it runs on): int8 weights cosine 0.9973,
heatmap-peak agreement 0.759 (below the 0.85 gate); int7 0.9988 / 0.833;
uint8 0.9995 / 0.890, what the same model gives on VNNI machines. Speed,
measured on a 2-core Intel Xeon with AMX seen as x86-avx2 (`make
bench-engines AS_CPU=x86-avx2`, `hack/cpumask/run`; 2026-12-06), against
fp32 at batch 1: int7 1.76-1.77x, uint8 1.11-1.15x, int8 1.77x (and wrong);
as x86-avx512 int7 1.57x, uint8 0.93x; unmasked (AMX) int7 3.59x, uint8
0.92x, int8 3.58x. int7 passed the gates at 224x320 (peaks 0.882) and missed
them at 320x448 (0.848), on the untrained sample.

A build may be told the class to build for (`bpnet-build --int8_instruction_set`:
the operator reads it from Node Feature Discovery's labels on the pool's
nodes before it creates the Job). The baseline class of an architecture
(`x86`, `arm64`) is right on every CPU of it: `x86` is built with int7 (or uint8)
weights, which no x86 kernel can saturate, and every Arm class takes int8 weights. Any
other class must be this CPU's own (`check_int8_class`): a pool whose labels
name another class is mislabelled, and an artifact built here under that name
would be recorded for CPUs it was never checked on.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

from bodypose_exporter.errors import UserError

X86_SETS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
)
ARM_SETS = ("asimd", "asimdhp", "asimddp", "i8mm", "bf16", "sve", "sve2")
INT8_DOT_SETS = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")

#: The int8 classes, best first: (class, the flags any one of which puts a CPU in it).
_X86_INT8_CLASSES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("x86-amx", ("amx_int8",)),
    ("x86-vnni", ("avx512_vnni", "avx_vnni")),
    ("x86-avx512", ("avx512bw",)),
    ("x86-avx2", ("avx2",)),
)
_ARM_INT8_CLASSES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("arm64-i8mm", ("i8mm",)),
    ("arm64-dotprod", ("asimddp",)),
)
#: Every class a build can be asked for, best first per architecture, each baseline last.
INT8_CLASSES: tuple[str, ...] = (
    *(name for name, _ in _X86_INT8_CLASSES),
    "x86",
    *(name for name, _ in _ARM_INT8_CLASSES),
    "arm64",
)
#: The classes whose artifact is right on every CPU of their architecture (see above).
BASELINE_CLASSES = frozenset({"x86", "arm64"})
#: ONNX metadata_props an int8 artifact carries (written by the builder, read by the runner).
METADATA_KEYS = {
    "instructionSet": "bodypose.int8InstructionSet",
    "weights": "bodypose.int8Weights",
}
#: The weights an int8 artifact can have: int8; uint8 (MLAS's u8u8 kernels); int7, int8
#: within [-64, 64] (ONNX Runtime's `reduce_range`), which no u8 x s8 kernel can saturate:
#: two products of 255 x 64 fit a 16-bit lane.
#: Symmetric int8 weights (zero point 0) run MLAS's symmetric convolution kernels
#: (`QLinearConv::TryConvSymPrepack` in ONNX Runtime). The same weights shifted to zero
#: point -1 (identical outputs) take its im2col + QGEMM path instead, AMX where the CPU
#: has it: 6% slower on a 2-core Xeon with AMX (58.5 against 55.2 ms, BpNet 224x320,
#: batch 1, 2026-12-07), so the artifact keeps zero point 0.
WEIGHT_KINDS = ("int8", "uint8", "int7")
#: Classes whose uint8 x int8 kernels add products in saturating 16-bit lanes.
SATURATING_CLASSES = frozenset({"x86-avx512", "x86-avx2", "x86"})


def int8_instruction_set(flags: set[str], machine: str | None = None) -> str:
    """The class of int8 kernels ONNX Runtime runs on a CPU with these flags."""
    machine = machine or platform.machine()
    if machine in ("x86_64", "AMD64", "i686"):
        table, fallback = _X86_INT8_CLASSES, "x86"
    else:
        table, fallback = _ARM_INT8_CLASSES, "arm64" if machine in ("aarch64", "arm64") else machine
    return next((name for name, sets in table if any(f in flags for f in sets)), fallback)


def architecture_of(instruction_set: str) -> str:
    """`x86` or `arm64`: the architecture a class belongs to (`x86-vnni` -> `x86`)."""
    return instruction_set.partition("-")[0]


class Int8ClassMismatchError(UserError):
    reason = "CpuClassMismatch"


def check_int8_class(requested: str, here: str) -> None:
    """Refuse to build for `requested` on a CPU whose own class is `here`, unless `requested`
    is the baseline of this CPU's architecture (right on every class of it)."""
    if requested not in INT8_CLASSES:
        raise UserError(
            f"--int8_instruction_set {requested!r}: choose one of {', '.join(INT8_CLASSES)}"
        )
    if requested == here:
        return
    if requested in BASELINE_CLASSES and architecture_of(here) == requested:
        return
    base = architecture_of(here)
    raise Int8ClassMismatchError(
        f"--int8_instruction_set {requested}: this node's CPU is {here}, not {requested}: the "
        "pool's Node Feature Discovery labels disagree with this node's /proc/cpuinfo, and an "
        f"artifact for {requested} built here would be recorded for CPUs it was not built on; "
        f"fix the nodes' labels or the target's nodeSelector ({base} is right on every {base} "
        "CPU)"
    )


#: Where an artifact with these weights fails its gates, the build tries these (int7 loses
#: a bit of each weight; uint8 none, on the slower u8u8 kernels).
FALLBACK_WEIGHTS = {"int7": "uint8"}


def int8_weights(instruction_set: str) -> str:
    """`int7` where the class's int8 kernels saturate (see the module docstring), else
    `int8`."""
    return "int7" if saturates(instruction_set) else "int8"


def saturates(instruction_set: str) -> bool:
    """Whether the class's u8 x s8 kernels add pairs of products in saturating 16-bit lanes."""
    return instruction_set in SATURATING_CLASSES


def parse_cpuinfo(text: str) -> tuple[str, set[str]]:
    """(CPU model name, flags) from the text of /proc/cpuinfo (first processor)."""
    model, flags = "", set[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model", "hardware") and not model:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return model, flags


def describe(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, Any]:
    try:
        model, flags = parse_cpuinfo(cpuinfo.read_text())
    except OSError:
        model, flags = "", set()
    known = X86_SETS if platform.machine() in ("x86_64", "AMD64", "i686") else ARM_SETS
    return {
        "cpuModel": model or platform.processor() or "unknown",
        "architecture": platform.machine(),
        "logicalCpus": os.cpu_count() or 0,
        "instructionSets": [f for f in known if f in flags],
        "int8DotProduct": any(f in flags for f in INT8_DOT_SETS),
        "int8InstructionSet": int8_instruction_set(flags),
    }
