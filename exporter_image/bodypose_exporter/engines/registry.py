"""Backends by name: `tensorrt` (GPU pools, the default) and `onnxruntime` (CPU pools)."""

from __future__ import annotations

import importlib.util

from bodypose_exporter.engines.base import EngineBackend
from bodypose_exporter.errors import UserError

BACKENDS = ("tensorrt", "onnxruntime")
DEFAULT_BACKEND = "tensorrt"


class BackendUnavailableError(UserError):
    reason = "BackendUnavailable"


def require_available(name: str) -> None:
    """Fail before any work when the chosen backend cannot run here."""
    if name not in BACKENDS:
        raise UserError(f"unknown engine backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if name == "tensorrt" and importlib.util.find_spec("tensorrt") is None:
        raise BackendUnavailableError(
            "--engine_backend tensorrt needs TensorRT and a GPU, which exist only in the target "
            "pools' image (NVIDIA's TensorRT container); `import tensorrt` fails here. To build "
            "a CPU artifact on this machine use --engine_backend onnxruntime"
        )


def backend_by_name(name: str) -> EngineBackend:
    require_available(name)
    if name == "onnxruntime":
        from bodypose_exporter.engines.ort.backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend()
    from bodypose_exporter.engines.trt.backend import TensorRTBackend

    return TensorRTBackend()
