"""What the tensorrt-rtx backend is (`engines.base.BackendFacts`), importable without it."""

from __future__ import annotations

from bodypose_exporter.engines.base import BackendFacts

FACTS = BackendFacts(
    name="tensorrt-rtx",
    runtime="TensorRT-RTX (its runtime loads the engine; ONNX Runtime's NvTensorRTRTX "
    "execution provider through the EPContext model beside it)",
    artifact_suffixes=(".engine",),
    # Triton serves TensorRT plans of TensorRT's own runtime; an RTX engine is not one.
    triton=None,
    nvinfer_loads=False,  # DeepStream's nvinfer runs TensorRT engines, not TensorRT-RTX's
    needs_gpu=False,  # built ahead of time for named compute capabilities
    precisions=("fp32", "fp16"),
    int8_sources=(),
    requires="tensorrt_rtx",
    unavailable=(
        "--engine_backend tensorrt-rtx needs NVIDIA TensorRT-RTX (pip install "
        "tensorrt-rtx-cu13, in the exporter image); `import tensorrt_rtx` fails here"
    ),
)
