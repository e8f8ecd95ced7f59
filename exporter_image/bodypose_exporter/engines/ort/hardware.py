"""The CPU an ONNX Runtime artifact was built on: model name and the instruction sets that matter.

Read from /proc/cpuinfo (`model name` and `flags` on x86, `Features` on Arm).
The sets listed are those ONNX Runtime's MLAS kernels dispatch on for this
network: FP32 convolutions (AVX2/FMA, AVX-512F) and int8 ones (AVX-VNNI,
AVX512-VNNI, AMX-INT8 on x86; dot-product and i8mm on Arm). An int8 artifact
is only fast where one of the int8 sets is present.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

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
    }
