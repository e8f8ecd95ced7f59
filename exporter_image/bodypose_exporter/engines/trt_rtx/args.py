"""The tensorrt-rtx backend's own flag: the compute capabilities to build for.

Added by `cli.args.add_backend_arguments` through the facts
(`facts.TensorRTRTXFacts`, `engines.capabilities.OwnsArguments`). No TensorRT-RTX here.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from bodypose_exporter.engines.base import flag


def capability_list(text: str) -> tuple[str, ...]:
    """`8.9,7.5` as ("8.9", "7.5") (checked by the backend, `hardware.parse_capabilities`)."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class TensorRTRTXOptions:
    """Its options in `EngineOptions.backend_options` (`EngineOptions.own`)."""

    #: The GPUs' compute capabilities it builds for ahead of time ("8.9", ...).
    compute_capabilities: tuple[str, ...] = field(
        default=(), metadata=flag("--compute_capabilities")
    )


def add_arguments(p: argparse.ArgumentParser, *, export: bool) -> None:
    """--compute_capabilities (the same for both commands: `None` is "not given")."""
    p.add_argument(
        "--compute_capabilities", type=capability_list, default=None, metavar="CC[,CC...]",
        help="tensorrt-rtx: the GPUs to build for ahead of time, e.g. 8.9 (L4, L40S), 8.6 "
        "(A10), 8.0 (A100), 7.5 (T4), 12.0 (Blackwell RTX); not 9.0 (Hopper: TensorRT-RTX "
        "does not run there); no GPU needed in this pod",
    )  # fmt: skip


#: Its options (`engines.capabilities.ArgumentsIn`).
OPTIONS = TensorRTRTXOptions

#: Its command lines among `bpnet build --help`'s examples (`capabilities.ShowsExamples`).
EXAMPLES = """\
  bpnet-build --onnx sample/bpnet_sample.onnx --reference sample/reference.npz \\
      --data_type fp16 --engine_backend tensorrt-rtx --compute_capabilities 8.9 \\
      --engine_file sample/l4/bpnet_model.320.448.fp16.engine
      an engine for L4 GPUs built here with no GPU: recorded as built, not run, unless
      this machine opens a CUDA device of compute capability 8.9
"""
