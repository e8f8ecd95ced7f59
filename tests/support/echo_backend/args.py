"""The echo backend's own flag, in the exporter's half: the label its build records.

The operator's half passes it (`operator_part.EchoPart`): a backend's Job argument of
its own, declared by the plug-in alone, that its build takes and records in the
manifest's `build` details (`engine.py`).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from bodypose_exporter.engines.base import flag
from tests.support.echo_backend import LABEL_FLAG


@dataclass(frozen=True)
class EchoOptions:
    """Its options in `EngineOptions.backend_options` (`EngineOptions.own`)."""

    echo_label: str | None = field(default=None, metadata=flag(LABEL_FLAG))


def add_arguments(p: argparse.ArgumentParser, *, export: bool) -> None:
    """--echo_label (the same for both commands: `None` is "no label")."""
    p.add_argument(
        LABEL_FLAG, default=None, metavar="LABEL",
        help="echo: a label its build records in the manifest (the operator passes the "
        "target's backendOptions.label, else its name)",
    )  # fmt: skip


#: Its options (`engines.capabilities.ArgumentsIn`).
OPTIONS = EchoOptions

#: Its command line among `bpnet build --help`'s examples (`capabilities.ShowsExamples`).
EXAMPLES = """\
  bpnet-build --onnx x/bpnet_model.onnx --reference x/reference.npz \\
      --engine_backend echo --echo_label cpu --engine_file x/echo/bpnet_model.fp32.onnx
      the FP32 graph, echoed and verified (the test plug-in)
"""
