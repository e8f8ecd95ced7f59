"""What the onnxruntime backend is (`engines.base.BackendFacts`)."""

from __future__ import annotations

from bodypose_contract.backends import FP16_AS_FP32, ONNXRUNTIME
from bodypose_exporter.engines.base import BackendFacts
from bodypose_exporter.engines.capabilities import ArgumentsIn
from bodypose_exporter.engines.ort import args
from bodypose_exporter.engines.ort.hardware import INT8_CLASSES
from bodypose_exporter.serving.triton import TritonPlatform

__all__ = ["FACTS", "FP16_AS_FP32"]


class OnnxRuntimeFacts(ArgumentsIn, BackendFacts):
    """Its facts, the CPU classes its int8 artifacts are built for
    (`engines.capabilities.Int8InstructionSets`) and its own flag (`OwnsArguments`, `args`)."""

    arguments = args

    @property
    def int8_instruction_sets(self) -> tuple[str, ...]:
        return INT8_CLASSES


FACTS = OnnxRuntimeFacts(
    # Its precisions (fp16 builds the FP32 graph and says so, `FP16_AS_FP32`, written where
    # both halves read it), its `.onnx` suffix, its int8 sources.
    support=ONNXRUNTIME,
    runtime="ONNX Runtime",
    triton=TritonPlatform("onnxruntime_onnx", "model.onnx", "KIND_CPU"),
    nvinfer_loads=False,
    needs_gpu=False,
    requires="onnxruntime",
)
