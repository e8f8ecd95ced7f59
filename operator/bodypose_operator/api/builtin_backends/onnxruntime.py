"""ONNX Runtime's operator part: its int8 artifacts are built for a CPU class.

The operator reads the pool's class (`controller/cpu_class.py`) for a backend whose
part is `Int8ByCpuClass`, puts it in the target's identity, and passes it to the build
as its argument group in the exporter spells it (`bodypose_exporter/engines/ort/args.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

from bodypose_contract.backends import ONNXRUNTIME
from bodypose_operator.api.backend_row import Backend, BuildImage


@dataclass(frozen=True)
class OnnxRuntime:
    """The operator part of the ONNX Runtime backend."""

    def int8_class_arguments(self, int8_class: str) -> list[str]:
        return ["--int8_instruction_set", int8_class]


#: Its row of the backend table.
ROW = Backend.of(
    ONNXRUNTIME,
    summary="an ONNX Runtime-optimized ONNX model (CPU pools, demos)",
    build_image=BuildImage.CPU,
    default_resources={"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "1"}},
    part=OnnxRuntime(),
)
