"""What the echo backend is, in the exporter's terms (`engines.base.BackendFacts`)."""

from __future__ import annotations

from bodypose_exporter.engines.base import BackendFacts
from bodypose_exporter.engines.capabilities import ArgumentsIn
from tests.support.echo_backend import SUPPORT, args


class EchoFacts(ArgumentsIn, BackendFacts):
    """Its facts and its own flag (`engines.capabilities.OwnsArguments`, `args`)."""

    arguments = args


FACTS = EchoFacts(
    support=SUPPORT,
    runtime="ONNX Runtime (an echo of the ONNX model)",
    triton=None,
    nvinfer_loads=False,
    needs_gpu=False,
    requires="onnxruntime",
)
