"""Engine builders: one interface, a TensorRT and an ONNX Runtime implementation."""

from bodypose_exporter.engines.base import BuildRequest, BuiltEngine, EngineBackend
from bodypose_exporter.engines.registry import backend_by_name

__all__ = ["BuildRequest", "BuiltEngine", "EngineBackend", "backend_by_name"]
