"""The onnxruntime backend's own flag: the CPU class an int8 artifact is built for.

Added by `cli.args.add_backend_arguments` through the facts
(`facts.OnnxRuntimeFacts`, `engines.capabilities.OwnsArguments`). No ONNX Runtime here.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from bodypose_exporter.engines.base import flag
from bodypose_exporter.engines.ort import hardware
from bodypose_exporter.engines.ort.hardware import INT8_CLASSES
from bodypose_exporter.errors import UserError


@dataclass(frozen=True)
class OnnxRuntimeOptions:
    """Its options in `EngineOptions.backend_options` (`EngineOptions.own`)."""

    #: The CPU class an int8 artifact is built for (`hardware`), as the pool's Node Feature
    #: Discovery labels say; None: this CPU's. Another class than this CPU's is refused,
    #: except the architecture's baseline (`x86`: right on every x86 CPU).
    int8_instruction_set: str | None = field(default=None, metadata=flag("--int8_instruction_set"))
    #: The weights of an int8 artifact (`calibration.qdq.WEIGHT_TYPES`); None: what its class
    #: takes (`hardware.int8_weights`). No flag: for callers that compare the kinds on one
    #: CPU (benchmarks/engines.py), and for the build step's fallback (`backend.py`).
    int8_weights: str | None = None


def add_arguments(p: argparse.ArgumentParser, *, export: bool) -> None:
    """--int8_instruction_set (the same for both commands: `None` is "this CPU's")."""
    p.add_argument(
        "--int8_instruction_set", default=None, choices=list(INT8_CLASSES), metavar="CLASS",
        help="onnxruntime int8: the CPU class to build for, as the pool's Node Feature Discovery "
        f"labels say ({', '.join(INT8_CLASSES)}; default: this CPU's); x86 is right on "
        "every x86 CPU (int7 weights, uint8 where int7 misses the gates); any other class "
        "must be this node's own, else the build fails before starting. Recorded in the "
        "manifest (compatibility.instructionSet)",
    )  # fmt: skip


def check(options: OnnxRuntimeOptions, precision: str) -> None:
    """--int8_instruction_set one of the classes, and only for int8 (an API caller may pass
    any string; the parser's choices hold only on the command line)."""
    weights = options.int8_weights
    if weights is not None and weights not in hardware.WEIGHT_KINDS:
        raise UserError(
            f"int8 weights {weights!r}: choose one of {', '.join(hardware.WEIGHT_KINDS)}"
        )
    given = options.int8_instruction_set
    if given is None:
        return
    if given not in INT8_CLASSES:
        raise UserError(
            f"--int8_instruction_set {given!r}: choose one of {', '.join(INT8_CLASSES)}"
        )
    if precision != "int8":
        raise UserError(
            f"--int8_instruction_set: only used with --data_type int8; this build is {precision}"
        )


#: Its options (`engines.capabilities.ArgumentsIn`).
OPTIONS = OnnxRuntimeOptions

#: Its command lines among `bpnet build --help`'s examples (`capabilities.ShowsExamples`).
EXAMPLES = """\
  bpnet-build --onnx sample/bpnet_sample.onnx --reference sample/reference.npz \\
      --engine_backend onnxruntime --engine_file sample/cpu/bpnet_model.320.448.fp32.engine
      a CPU artifact, on this machine
  bpnet-build --onnx x/bpnet_model.onnx --reference x/reference.npz --data_type int8 \\
      --cal_cache_file x/cal.bin --qdq_model x/bpnet_model.qdq.onnx \\
      --eval_reference x/evaluation.json --deploy_onnx x/bpnet_model.deploy.onnx \\
      --engine_backend onnxruntime --engine_file x/cpu/bpnet_model.320.448.int8.engine
      also evaluates the engine's OKS AP on the export's evaluation set and fails (exit
      3, AccuracyDropTooLarge) past --max_ap_drop; then builds the SDK-compatible engine
"""
