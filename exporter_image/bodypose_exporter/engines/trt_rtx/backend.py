"""The tensorrt-rtx backend: its builder and its runner behind the one interface (`engines.base`).

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
from bodypose_exporter.engines.trt_rtx import hardware
from bodypose_exporter.engines.trt_rtx.args import TensorRTRTXOptions
from bodypose_exporter.engines.trt_rtx.builder import TensorRTRTXBuilder
from bodypose_exporter.engines.trt_rtx.facts import FACTS
from bodypose_exporter.engines.trt_rtx.runner import TensorRTRTXRunner
from bodypose_exporter.errors import UserError


class TensorRTRTXBackend:
    facts = FACTS

    def describe(self) -> dict[str, Any]:
        return hardware.describe()

    def target(
        self, options: EngineOptions, described: dict[str, Any]
    ) -> CompatibilityRecord | None:
        """The capabilities to build for (refused when TensorRT-RTX has none of them)."""
        wanted = options.own(TensorRTRTXOptions).compute_capabilities
        if not wanted:
            raise UserError(
                "--engine_backend tensorrt-rtx builds for named GPUs: give "
                "--compute_capabilities (e.g. 8.9 for L4 and L40S, 8.6 for A10, 8.0 for A100, "
                "7.5 for T4)"
            )
        capabilities = hardware.parse_capabilities(",".join(wanted))
        version = str(described["tensorrtRtxVersion"])
        return CompatibilityRecord(
            {"computeCapabilities": ",".join(capabilities), "tensorrtRtxVersion": version},
            tag=f"{hardware.tag(capabilities)}.trtrtx{version}",
        )

    # engines.capabilities.BuiltAheadOfTime
    def not_run_reason(self, described: dict[str, Any]) -> str | None:
        """Why this pod does not run the engine it built (no CUDA device it can open, or
        one of another compute capability), or None: the build's hardware record says
        (`hardware.run_decision`)."""
        return hardware.not_run_reason(described)

    def build(self, request: BuildRequest) -> BuiltEngine:
        return TensorRTRTXBuilder().build(request)

    def load(self, engine_path: Path) -> TensorRTRTXRunner:
        return TensorRTRTXRunner(engine_path)


BACKEND = TensorRTRTXBackend()
