"""The tensorrt backend's own flags: its int8 route and the GPU its build must run on.

Added by `cli.args.add_backend_arguments` through the facts (`facts.TensorRTFacts`,
`engines.capabilities.OwnsArguments`): the CLI names none of them. No TensorRT here.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from bodypose_exporter.engines.base import flag

#: How an int8 engine is quantized (`builder.int8_route` chooses among them).
INT8_ROUTES = ("auto", "qdq", "cal_bin")


@dataclass(frozen=True)
class TensorRTOptions:
    """Its options in `EngineOptions.backend_options` (`EngineOptions.own`)."""

    int8_route: str = field(default="auto", metadata=flag("--int8_route"))
    #: The pool's nvidia.com/gpu.product: a GPU build stops before any work on another GPU.
    expected_gpu_product: str | None = field(default=None, metadata=flag("--expected_gpu_product"))
    expected_compute_capability: str | None = field(
        default=None, metadata=flag("--expected_compute_capability")
    )


def add_arguments(p: argparse.ArgumentParser, *, export: bool) -> None:
    """How a TensorRT engine is built and what GPU it must be built on. `export`: `None`
    defaults (bpnet-export refuses them without --engine_file)."""
    p.add_argument(
        "--int8_route", default=None if export else "auto", choices=list(INT8_ROUTES),
        help="tensorrt int8: qdq = a strongly typed network from --qdq_model (TensorRT >= 10); "
        "cal_bin = implicit quantization with cal.bin (--cal_cache_file or --cal_data_file; "
        "deprecated from TensorRT 10.1, removed in 11; what DeepStream and TAO read); auto "
        "(default) = qdq on TensorRT >= 10 when --qdq_model is given, else cal_bin",
    )  # fmt: skip
    p.add_argument(
        "--expected_gpu_product", default=None,
        help="tensorrt: the GPU this build must run on, as the pool's nvidia.com/gpu.product "
        "label says (e.g. NVIDIA-A100-SXM4-40GB); the build fails before starting if the "
        "device differs",
    )  # fmt: skip
    p.add_argument(
        "--expected_compute_capability", default=None,
        help="tensorrt: the compute capability this build must run on (e.g. 8.6); the build "
        "fails before starting if the device differs",
    )  # fmt: skip


#: Its options (`engines.capabilities.ArgumentsIn`).
OPTIONS = TensorRTOptions

#: Its command lines among `bpnet build --help`'s examples (`capabilities.ShowsExamples`).
EXAMPLES = """\
  bpnet-build --onnx s3://b/x/bpnet_model.onnx --reference s3://b/x/reference.npz \\
      --data_type fp16 --engine_backend tensorrt \\
      --engine_file s3://b/x/targets/a100/bpnet_model.320.448.fp16.engine
      what a build Job runs on a GPU pool
"""
