"""The engine interface, in the spirit of Polygraphy's runners: build once, run many.

A backend turns the exported FP32 ONNX model (plus, for int8, the calibration
cache or the QDQ model) into a runnable artifact for the hardware it runs on,
and runs that artifact. The rest of the exporter never knows which backend it
holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class BuildRequest:
    onnx_path: Path
    engine_path: Path
    precision: str  # fp32 | fp16 | int8
    max_batch_size: int = 1
    max_workspace_size: int = 2 << 30
    strict_types: bool = False
    calibration_cache: Path | None = None
    qdq_model: Path | None = None
    timing_cache: Path | None = None


@dataclass(frozen=True)
class BuiltEngine:
    path: Path
    backend: str
    hardware: dict[str, Any] = field(default_factory=dict)


class EngineRunner(Protocol):
    def run(self, inputs: np.ndarray) -> dict[str, np.ndarray]: ...


class EngineBackend(Protocol):
    name: str

    def build(self, request: BuildRequest) -> BuiltEngine: ...

    def load(self, engine_path: Path) -> EngineRunner: ...
