"""What the echo backend is, in the exporter's terms (`engines.base.BackendFacts`)."""

from __future__ import annotations

from bodypose_exporter.engines.base import BackendFacts
from tests.support.echo_backend import SUPPORT

FACTS = BackendFacts(
    support=SUPPORT,
    runtime="ONNX Runtime (an echo of the ONNX model)",
    triton=None,
    nvinfer_loads=False,
    needs_gpu=False,
    requires="onnxruntime",
)
