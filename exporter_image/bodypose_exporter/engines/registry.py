"""Backends by name."""

from __future__ import annotations

from bodypose_exporter.engines.base import EngineBackend
from bodypose_exporter.errors import UserError

BACKENDS = ("tensorrt", "onnxruntime")


def backend_by_name(name: str) -> EngineBackend:
    if name == "onnxruntime":
        from bodypose_exporter.engines.onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend()
    if name == "tensorrt":
        from bodypose_exporter.engines.tensorrt_backend import TensorRTBackend

        return TensorRTBackend()
    raise UserError(f"unknown engine backend {name!r}; choose one of {', '.join(BACKENDS)}")
