"""Backends by name: `tensorrt` (GPU pools, the default), `tensorrt-rtx` (engines built
ahead of time for named GPUs), `onnxruntime` (CPU pools), and any plug-in.

A backend registers itself: its facts (importable without its runtime) and the
module that holds its `BACKEND`, imported only when that backend is chosen, so
that TensorRT is imported only by a command that builds or runs a TensorRT
engine (followed: Polygraphy's tool registry, NVIDIA/TensorRT
`tools/Polygraphy/polygraphy/tools/registry.py`, which imports each tool's
module by name; and Kueue's `pkg/controller/jobframework`, where each
integration registers itself). The built-in three are registered below; a
plug-in either calls `register` from code, or is a module named in
`BODYPOSE_BACKEND_PLUGINS` (comma-separated) whose `register_exporter(register)`
this module calls when it is first imported. The operator reads the same
variable (`bodypose_operator/api/backends.py`) and calls the same module's
`register_operator`.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import cast

from bodypose_exporter.engines.base import BackendFacts, EngineBackend
from bodypose_exporter.engines.ort import facts as ort_facts
from bodypose_exporter.engines.trt import facts as trt_facts
from bodypose_exporter.engines.trt_rtx import facts as rtx_facts
from bodypose_exporter.errors import UserError

#: The modules of plug-in backends, comma-separated (both halves read it).
PLUGINS_ENV = "BODYPOSE_BACKEND_PLUGINS"

#: One row per backend: its facts and the module holding its `BACKEND`, imported only
#: when the backend is chosen. Filled by `register`.
BACKEND_MODULES: dict[str, tuple[BackendFacts, str]] = {}


def register(facts: BackendFacts, module: str) -> None:
    """Add a backend: `facts`, and `module`, whose `BACKEND` builds and loads its artifacts.
    A name registered twice is refused: two backends would answer to it."""
    if facts.name in BACKEND_MODULES:
        raise ValueError(f"a backend named {facts.name!r} is already registered")
    BACKEND_MODULES[facts.name] = (facts, module)


def register_plugins(modules: str | None = None) -> None:
    """Register the plug-ins `modules` names (default: `$BODYPOSE_BACKEND_PLUGINS`)."""
    names = os.environ.get(PLUGINS_ENV, "") if modules is None else modules
    for name in (n.strip() for n in names.split(",")):
        if name:
            importlib.import_module(name).register_exporter(register)


def names() -> tuple[str, ...]:
    """Every registered backend, the built-in ones first."""
    return tuple(BACKEND_MODULES)


register(trt_facts.FACTS, "bodypose_exporter.engines.trt.backend")
register(ort_facts.FACTS, "bodypose_exporter.engines.ort.backend")
register(rtx_facts.FACTS, "bodypose_exporter.engines.trt_rtx.backend")
register_plugins()

#: The backends registered at import (the built-in ones, then the plug-ins the
#: environment names): the CLI's choices.
BACKENDS = names()
DEFAULT_BACKEND = trt_facts.FACTS.name
#: The backend that runs an ONNX model as it is: the FP32 reference, evaluation of ONNX.
ONNX_REFERENCE = ort_facts.FACTS.name


class BackendUnavailableError(UserError):
    reason = "BackendUnavailable"


def facts_of(name: str) -> BackendFacts:
    """A backend's facts by name; UserError for a name no row has."""
    if name not in BACKEND_MODULES:
        raise UserError(f"unknown engine backend {name!r}; choose one of {', '.join(names())}")
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
