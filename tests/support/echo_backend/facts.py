"""What the echo backend is, in the exporter's terms (`engines.base.BackendFacts`)."""

from __future__ import annotations

import argparse

from bodypose_exporter.engines.base import BackendFacts
from tests.support.echo_backend import SUPPORT, args


class EchoFacts(BackendFacts):
    """Its facts and its own flag (`engines.capabilities.OwnsArguments`, `args`)."""

    def add_arguments(self, parser: argparse.ArgumentParser, *, export: bool) -> None:
        args.add_arguments(parser, export=export)

    @property
    def options_type(self) -> type:
        return args.EchoOptions


FACTS = EchoFacts(
    support=SUPPORT,
    runtime="ONNX Runtime (an echo of the ONNX model)",
    triton=None,
    nvinfer_loads=False,
    needs_gpu=False,
    requires="onnxruntime",
)
