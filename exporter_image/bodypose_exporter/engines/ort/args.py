"""The onnxruntime backend's own flag: the CPU class an int8 artifact is built for.

Added by `cli.args.add_backend_arguments` through the facts
(`facts.OnnxRuntimeFacts`, `engines.capabilities.OwnsArguments`). No ONNX Runtime here.
"""

from __future__ import annotations

import argparse

from bodypose_exporter.engines.ort.hardware import INT8_CLASSES


def add_arguments(p: argparse.ArgumentParser, *, export: bool) -> None:
    """--int8_instruction_set (the same for both commands: `None` is "this CPU's")."""
    p.add_argument(
        "--int8_instruction_set", default=None, choices=list(INT8_CLASSES), metavar="CLASS",
        help="onnxruntime int8: the CPU class to build for, as the pool's Node Feature Discovery "
        f"labels say ({', '.join(INT8_CLASSES)}; default: this CPU's); x86 is right on "
        "every x86 CPU (uint8 weights); any other class must be this node's own, else the "
        "build fails before starting. Recorded in the manifest (compatibility.instructionSet)",
    )  # fmt: skip
