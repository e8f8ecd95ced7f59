"""ONNX Runtime backend: the graph-optimized model is the artifact (CPU pools, demos, tests).

fp32 and fp16 both run the FP32 graph (ORT's CPU provider has no general fp16
kernels); int8 needs the QDQ model from calibration. The artifact is written
with `SessionOptions.optimized_model_filepath` at ORT_ENABLE_EXTENDED: the
highest level whose output stays portable across CPUs (ORT's docs on graph
optimizations: ENABLE_ALL adds layout changes tied to the machine).
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from bodypose_exporter.engines.base import BuildRequest, BuiltEngine
from bodypose_exporter.errors import UserError

_ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8", "avx_vnni", "fma")


def cpu_description() -> dict[str, Any]:
    """The CPU the artifact was built on: model name and the instruction sets that matter."""
    model, flags = platform.processor() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("unknown", "", platform.machine()):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return {
        "cpuModel": model,
        "instructionSets": [f for f in _ISA_FLAGS if f in flags],
        "onnxruntimeVersion": ort.__version__,
    }


class OrtRunner:
    def __init__(self, path: Path) -> None:
        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, inputs: np.ndarray) -> dict[str, np.ndarray]:
        outs = self.session.run(self.output_names, {self.input_name: inputs.astype(np.float32)})
        return dict(zip(self.output_names, outs, strict=True))


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def build(self, request: BuildRequest) -> BuiltEngine:
        source = request.onnx_path
        if request.precision == "int8":
            if request.qdq_model is None:
                raise UserError(
                    "--engine_backend onnxruntime with int8 needs the QDQ model calibration writes"
                )
            source = request.qdq_model
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(request.engine_path)
        ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
        return BuiltEngine(request.engine_path, self.name, cpu_description())

    def load(self, engine_path: Path) -> OrtRunner:
        return OrtRunner(engine_path)
