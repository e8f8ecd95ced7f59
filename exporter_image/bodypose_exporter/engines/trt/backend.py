"""The tensorrt backend: its builder and its runner behind the one interface (`engines.base`).

TensorRT 10 (GPU pools). Imported only when `tensorrt` is chosen (`engines.registry`):
its modules need `tensorrt` and cuda-python, which exist only in the GPU image.

The files of a backend package and their roles: `engines/__init__.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bodypose_exporter.engines.base import BuildRequest, BuiltEngine
from bodypose_exporter.engines.trt import hardware
from bodypose_exporter.engines.trt.builder import TensorRTBuilder
from bodypose_exporter.engines.trt.runner import TensorRTRunner


class TensorRTBackend:
    name = "tensorrt"

    def describe(self) -> dict[str, Any]:
        return hardware.describe()

    def build(self, request: BuildRequest) -> BuiltEngine:
        return TensorRTBuilder().build(request)

    def load(self, engine_path: Path) -> TensorRTRunner:
        return TensorRTRunner(engine_path)


BACKEND = TensorRTBackend()
