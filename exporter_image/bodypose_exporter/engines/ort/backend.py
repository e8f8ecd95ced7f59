"""The onnxruntime backend: its builder and its runner behind the one interface (`engines.base`).

ONNX Runtime (CPU pools, the local demo, every test without a GPU).

The files of a backend package and their roles: `engines/__init__.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bodypose_exporter.engines.base import BuildRequest, BuiltEngine
from bodypose_exporter.engines.ort import hardware
from bodypose_exporter.engines.ort.builder import OnnxRuntimeBuilder
from bodypose_exporter.engines.ort.runner import OrtRunner


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def describe(self) -> dict[str, Any]:
        return hardware.describe()

    def build(self, request: BuildRequest) -> BuiltEngine:
        return OnnxRuntimeBuilder().build(request)

    def load(self, engine_path: Path) -> OrtRunner:
        return OrtRunner(engine_path)


BACKEND = OnnxRuntimeBackend()
