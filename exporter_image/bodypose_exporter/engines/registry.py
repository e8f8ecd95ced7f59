"""Backends by name: `tensorrt` (GPU pools, the default), `tensorrt-rtx` (engines built
ahead of time for named GPUs) and `onnxruntime` (CPU pools).

One row per backend: its facts, and the module that holds its `BACKEND`,
imported only when that backend is chosen, so that TensorRT is imported
only by a command that builds or runs a TensorRT engine (followed:
Polygraphy's tool registry, NVIDIA/TensorRT
`tools/Polygraphy/polygraphy/tools/registry.py`, which imports each tool's
module by name). Adding a backend is its folder (`engines/__init__.py`
lists the files) and one row here.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import cast

from bodypose_exporter.engines.base import BackendFacts, EngineBackend
from bodypose_exporter.engines.ort import facts as ort_facts
from bodypose_exporter.engines.trt import facts as trt_facts
from bodypose_exporter.engines.trt_rtx import facts as rtx_facts
from bodypose_exporter.errors import UserError

#: One row per backend: its facts (importable without its runtime) and the module
#: holding its `BACKEND`, imported only when the backend is chosen.
BACKEND_MODULES: dict[str, tuple[BackendFacts, str]] = {
    trt_facts.FACTS.name: (trt_facts.FACTS, "bodypose_exporter.engines.trt.backend"),
    ort_facts.FACTS.name: (ort_facts.FACTS, "bodypose_exporter.engines.ort.backend"),
    rtx_facts.FACTS.name: (rtx_facts.FACTS, "bodypose_exporter.engines.trt_rtx.backend"),
}
BACKENDS = tuple(BACKEND_MODULES)
DEFAULT_BACKEND = trt_facts.FACTS.name
#: The backend that runs an ONNX model as it is: the FP32 reference, evaluation of ONNX.
ONNX_REFERENCE = ort_facts.FACTS.name


class BackendUnavailableError(UserError):
    reason = "BackendUnavailable"


def facts_of(name: str) -> BackendFacts:
    """A backend's facts by name; UserError for a name no row has."""
    if name not in BACKEND_MODULES:
        raise UserError(f"unknown engine backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return BACKEND_MODULES[name][0]


def require_available(name: str) -> None:
    """Fail before any work when the chosen backend cannot run here."""
    facts = facts_of(name)
    if facts.requires and importlib.util.find_spec(facts.requires) is None:
        raise BackendUnavailableError(
            facts.unavailable or f"--engine_backend {name} needs {facts.requires}, missing here"
        )


def backend_by_name(name: str) -> EngineBackend:
    require_available(name)
    module = importlib.import_module(BACKEND_MODULES[name][1])
    return cast(EngineBackend, module.BACKEND)
