"""What the tensorrt backend is (`engines.base.BackendFacts`), importable without TensorRT."""

from __future__ import annotations

from bodypose_exporter.engines.base import PRECISIONS, BackendFacts
from bodypose_exporter.serving.triton import TritonPlatform

FACTS = BackendFacts(
    name="tensorrt",
    runtime="TensorRT (a serialized engine, a plan)",
    artifact_suffixes=(".engine", ".plan"),
    triton=TritonPlatform("tensorrt_plan", "model.plan", "KIND_GPU"),
    nvinfer_loads=True,
    needs_gpu=True,
    precisions=PRECISIONS,
    int8_sources=("qdq", "calibration-cache", "tensorfile"),
    # TensorRT's HardwareCompatibilityLevel NONE and AMPERE_PLUS (engines.compatibility).
    hardware_compatibility_levels=("none", "ampere+"),
    checks_gpu=True,
    timing_cache=True,
    requires="tensorrt",
    unavailable=(
        "--engine_backend tensorrt needs TensorRT and a GPU, which exist only in the target "
        "pools' image (NVIDIA's TensorRT container); `import tensorrt` fails here. To build "
        "a CPU artifact on this machine use --engine_backend onnxruntime"
    ),
)
