"""What the tensorrt-rtx backend is (`engines.base.BackendFacts`), importable without it."""

from __future__ import annotations

from bodypose_contract.backends import TENSORRT_RTX
from bodypose_exporter.engines.base import BackendFacts
from bodypose_exporter.engines.capabilities import ArgumentsIn
from bodypose_exporter.engines.trt_rtx import args


class TensorRTRTXFacts(ArgumentsIn, BackendFacts):
    """Its facts, and its own flag (`engines.capabilities.OwnsArguments`, `args`)."""

    arguments = args


FACTS = TensorRTRTXFacts(
    support=TENSORRT_RTX,  # fp32 and fp16, the compute capabilities it builds for
    runtime="TensorRT-RTX (its runtime loads the engine; ONNX Runtime's NvTensorRTRTX "
    "execution provider through the EPContext model beside it)",
    # Triton serves TensorRT plans of TensorRT's own runtime; an RTX engine is not one.
    triton=None,
    nvinfer_loads=False,  # DeepStream's nvinfer runs TensorRT engines, not TensorRT-RTX's
    needs_gpu=False,  # built ahead of time for named compute capabilities
    requires="tensorrt_rtx",
    unavailable=(
        "--engine_backend tensorrt-rtx needs NVIDIA TensorRT-RTX (pip install "
        "tensorrt-rtx-cu13, in the exporter image); `import tensorrt_rtx` fails here"
    ),
)
