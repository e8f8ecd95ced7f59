"""The tensorrt backend: its builder and its runner behind the one interface (`engines.base`).

TensorRT 10 (GPU pools). Imported only when `tensorrt` is chosen (`engines.registry`):
its modules need `tensorrt` and cuda-python, which exist only in the GPU image.

The files of a backend package and their roles: `engines/__init__.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bodypose_exporter.engines.base import (
    BuildRequest,
    BuiltEngine,
    CompatibilityRecord,
    EngineOptions,
)
from bodypose_exporter.engines.compatibility import check_expected_gpu, tensorrt_record
from bodypose_exporter.engines.trt import hardware
from bodypose_exporter.engines.trt.args import TensorRTOptions
from bodypose_exporter.engines.trt.builder import TensorRTBuilder
from bodypose_exporter.engines.trt.facts import FACTS
from bodypose_exporter.engines.trt.runner import TensorRTRunner


class TensorRTBackend:
    facts = FACTS

    def describe(self) -> dict[str, Any]:
        return hardware.describe()

    def target(
        self, options: EngineOptions, described: dict[str, Any]
    ) -> CompatibilityRecord | None:
        """The record names the GPU read from the device (checked against the pool's first,
        `check_gpu`)."""
        return tensorrt_record(described, options.hardware_compatibility)

    # engines.capabilities.ChecksGpu
    def check_gpu(self, described: dict[str, Any], options: EngineOptions) -> None:
        own = options.own(TensorRTOptions)
        check_expected_gpu(described, own.expected_gpu_product, own.expected_compute_capability)

    # engines.capabilities.TimingCache
    def shared_timing_cache_key(self, described: dict[str, Any]) -> str:
        return hardware.timing_cache_key(described)

    def build(self, request: BuildRequest) -> BuiltEngine:
        return TensorRTBuilder().build(request)

    def load(self, engine_path: Path) -> TensorRTRunner:
        return TensorRTRunner(engine_path)


BACKEND = TensorRTBackend()
