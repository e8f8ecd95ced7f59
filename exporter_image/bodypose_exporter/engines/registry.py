"""Backends by name: `tensorrt` (GPU pools, the default) and `onnxruntime` (CPU pools).

A table from name to the module that holds its `BACKEND`, imported only when
that backend is chosen, so that TensorRT is imported only by a command that
builds or runs a TensorRT engine (followed: Polygraphy's tool registry,
NVIDIA/TensorRT `tools/Polygraphy/polygraphy/tools/registry.py`, which imports
each tool's module by name). Every backend module has the same shape
(`engines/<name>/backend.py`, `builder.py`, `runner.py`, `hardware.py`).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import cast

from bodypose_exporter.engines.base import EngineBackend
from bodypose_exporter.errors import UserError

#: name -> (module holding BACKEND, the import it needs).
MODULES = {
    "tensorrt": ("bodypose_exporter.engines.trt.backend", "tensorrt"),
    "onnxruntime": ("bodypose_exporter.engines.ort.backend", "onnxruntime"),
}
BACKENDS = tuple(MODULES)
DEFAULT_BACKEND = "tensorrt"


class BackendUnavailableError(UserError):
    reason = "BackendUnavailable"


def require_available(name: str) -> None:
    """Fail before any work when the chosen backend cannot run here."""
    if name not in MODULES:
        raise UserError(f"unknown engine backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if name == "tensorrt" and importlib.util.find_spec(MODULES[name][1]) is None:
        raise BackendUnavailableError(
            "--engine_backend tensorrt needs TensorRT and a GPU, which exist only in the target "
            "pools' image (NVIDIA's TensorRT container); `import tensorrt` fails here. To build "
            "a CPU artifact on this machine use --engine_backend onnxruntime"
        )


def backend_by_name(name: str) -> EngineBackend:
    require_available(name)
    module = importlib.import_module(MODULES[name][0])
    return cast(EngineBackend, module.BACKEND)
