"""What the tensorrt backend is (`engines.base.BackendFacts`), importable without TensorRT."""

from __future__ import annotations

import argparse

from bodypose_contract.backends import TENSORRT
from bodypose_exporter.engines.base import BackendFacts
from bodypose_exporter.engines.trt import args
from bodypose_exporter.serving.triton import TritonPlatform


class TensorRTFacts(BackendFacts):
    """Its facts, and its own flags (`engines.capabilities.OwnsArguments`, `args`)."""

    def add_arguments(self, parser: argparse.ArgumentParser, *, export: bool) -> None:
        args.add_arguments(parser, export=export)

    @property
    def options_type(self) -> type:
        return args.TensorRTOptions


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
