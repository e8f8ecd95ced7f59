"""The onnxruntime backend: its builder and its runner behind the one interface (`engines.base`).

ONNX Runtime (CPU pools, the local demo, every test without a GPU).

The files of a backend package and their roles: `engines/__init__.py`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from bodypose_exporter.engines.base import (
    BuildRequest,
    BuiltEngine,
    CompatibilityRecord,
    EngineOptions,
)
from bodypose_exporter.engines.ort import hardware
from bodypose_exporter.engines.ort.args import OnnxRuntimeOptions
from bodypose_exporter.engines.ort.args import check as check_options
from bodypose_exporter.engines.ort.builder import OnnxRuntimeBuilder, int8_record
from bodypose_exporter.engines.ort.facts import FACTS
from bodypose_exporter.engines.ort.runner import OrtRunner


class OnnxRuntimeBackend:
    facts = FACTS

    def describe(self) -> dict[str, Any]:
        return hardware.describe()

    def target(
        self, options: EngineOptions, described: dict[str, Any]
    ) -> CompatibilityRecord | None:
        """Only an int8 artifact needs something of the CPU: its class (`hardware`); a class
        asked for must be this CPU's, or the baseline of its architecture."""
        own = options.own(OnnxRuntimeOptions)
        check_options(own, options.precision)
        if options.precision == "int8" and own.int8_instruction_set is not None:
            hardware.check_int8_class(own.int8_instruction_set, described["int8InstructionSet"])
        return int8_record(options, described)

    def build(self, request: BuildRequest) -> BuiltEngine:
        return OnnxRuntimeBuilder().build(request)

    def fallback_request(self, request: BuildRequest) -> tuple[BuildRequest, str] | None:
        """An int8 artifact with int7 weights that failed its gates is built again with
        uint8 weights (`hardware.FALLBACK_WEIGHTS`): exact on every x86 kernel, slower."""
        options = request.options
        if options.precision != "int8":
            return None
        own = options.own(OnnxRuntimeOptions)
        record = int8_record(options, self.describe())
        weights = record.fields["weights"] if record is not None else None
        fallback = hardware.FALLBACK_WEIGHTS.get(str(weights))
        if fallback is None:
            return None
        why = (
            f"the int8 artifact with {weights} weights (fast on every x86 CPU) is outside "
            f"its gates; built again with {fallback} weights (exact on every x86 CPU, slower)"
        )
        options = options.with_own(dataclasses.replace(own, int8_weights=fallback))
        return dataclasses.replace(request, options=options), why

    def load(self, engine_path: Path) -> OrtRunner:
        return OrtRunner(engine_path)


BACKEND = OnnxRuntimeBackend()
