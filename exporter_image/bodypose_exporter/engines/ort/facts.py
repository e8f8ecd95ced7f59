"""What the onnxruntime backend is (`engines.base.BackendFacts`)."""

from __future__ import annotations

from bodypose_exporter.engines.base import PRECISIONS, BackendFacts
from bodypose_exporter.engines.ort.hardware import INT8_CLASSES
from bodypose_exporter.serving.triton import TritonPlatform

FACTS = BackendFacts(
    name="onnxruntime",
    runtime="ONNX Runtime",
    artifact_suffixes=(".onnx",),  # an ONNX model: a `.engine` file would be tried as a plan
    triton=TritonPlatform("onnxruntime_onnx", "model.onnx", "KIND_CPU"),
    nvinfer_loads=False,
    needs_gpu=False,
    precisions=PRECISIONS,  # fp16 builds the FP32 graph and says so (engines/ort/builder.py)
    int8_sources=("calibration-cache", "qdq"),
    int8_instruction_sets=INT8_CLASSES,
    requires="onnxruntime",
)
