"""ONNX Runtime's operator part: its int8 artifacts are built for a CPU class.

The operator reads the pool's class (`controller/cpu_class.py`) for a backend whose
part is `Int8ByCpuClass`, puts it in the target's identity, and passes it to the build
as its argument group in the exporter spells it (`bodypose_exporter/engines/ort/args.py`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OnnxRuntime:
    """The operator part of the ONNX Runtime backend."""

    def int8_class_arguments(self, int8_class: str) -> list[str]:
        return ["--int8_instruction_set", int8_class]
