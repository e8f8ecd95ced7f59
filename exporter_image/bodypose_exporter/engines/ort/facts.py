"""What the onnxruntime backend is (`engines.base.BackendFacts`)."""

from __future__ import annotations

from bodypose_exporter.engines.base import PRECISIONS, BackendFacts
from bodypose_exporter.engines.ort.hardware import INT8_CLASSES
from bodypose_exporter.serving.triton import TritonPlatform

#: Why an fp16 ONNX Runtime artifact is the FP32 graph. ONNX Runtime's CPU provider runs an
#: FP16 graph by casting around each node it has no FP16 kernel for and computing it in FP32
#: (a maintainer: https://github.com/microsoft/onnxruntime/issues/11831), which costs up to
#: twice FP32's latency on x86 (https://github.com/microsoft/onnxruntime/issues/16778).
#: Checked with ONNX Runtime 1.32 on x86: the export's FP16 model (`convert/fp16.py`) opened
#: on the CPU provider gets a Cast around every Conv and ConvTranspose.
FP16_AS_FP32 = (
    "ONNX Runtime's CPU provider has no FP16 convolution kernels (it would cast an FP16 "
    "graph back to FP32 around every convolution): the artifact is the FP32 graph"
)

FACTS = BackendFacts(
    name="onnxruntime",
    runtime="ONNX Runtime",
    artifact_suffixes=(".onnx",),  # an ONNX model: a `.engine` file would be tried as a plan
    triton=TritonPlatform("onnxruntime_onnx", "model.onnx", "KIND_CPU"),
    nvinfer_loads=False,
    needs_gpu=False,
    precisions=PRECISIONS,  # fp16 builds the FP32 graph and says so (engines/ort/builder.py)
    built_as=(("fp16", "fp32", FP16_AS_FP32),),
    int8_sources=("calibration-cache", "qdq"),
    int8_instruction_sets=INT8_CLASSES,
    requires="onnxruntime",
)
