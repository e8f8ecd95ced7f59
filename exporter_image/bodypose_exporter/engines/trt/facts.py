"""What the tensorrt backend is (`engines.base.BackendFacts`), importable without TensorRT."""

from __future__ import annotations

from bodypose_contract.backends import TENSORRT
from bodypose_exporter.engines.base import BackendFacts
from bodypose_exporter.engines.capabilities import ArgumentsIn
from bodypose_exporter.engines.trt import args
from bodypose_exporter.serving.triton import TritonPlatform


class TensorRTFacts(ArgumentsIn, BackendFacts):
    """Its facts, and its own flags (`engines.capabilities.OwnsArguments`, `args`)."""

    arguments = args


FACTS = TensorRTFacts(
    support=TENSORRT,  # precisions, int8 sources, compatibility levels, suffixes
    runtime="TensorRT (a serialized engine, a plan)",
    triton=TritonPlatform("tensorrt_plan", "model.plan", "KIND_GPU"),
    nvinfer_loads=True,
    needs_gpu=True,
    requires="tensorrt",
    unavailable=(
        "--engine_backend tensorrt needs TensorRT and a GPU, which exist only in the target "
        "pools' image (NVIDIA's TensorRT container); `import tensorrt` fails here. To build "
        "a CPU artifact on this machine use --engine_backend onnxruntime"
    ),
)
