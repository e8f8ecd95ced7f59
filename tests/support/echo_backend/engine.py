"""The echo backend's build and runner: the ONNX model copied, and run by ONNX Runtime."""

from __future__ import annotations

import platform
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from bodypose_exporter.engines.base import (
    BuildRequest,
    BuiltEngine,
    CompatibilityRecord,
    EngineOptions,
)
from tests.support.echo_backend import NAME, RECORD_KEY
from tests.support.echo_backend.args import EchoOptions
from tests.support.echo_backend.facts import FACTS


class EchoRunner:
    """One ONNX Runtime session on the CPU, one thread."""

    run_includes = ("inference", "output conversion")

    def __init__(self, path: Path) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.threads = 1
        self.threads_from = "the echo backend runs on one thread"
        self.input_name: str = self.session.get_inputs()[0].name
        self.output_names: list[str] = [o.name for o in self.session.get_outputs()]
        batch = self.session.get_inputs()[0].shape[0]
        self.max_batch_size: int = batch if isinstance(batch, int) and batch > 0 else 64

    def run(self, inputs: npt.NDArray[np.float32]) -> dict[str, npt.NDArray[np.float32]]:
        feed = {self.input_name: np.ascontiguousarray(inputs, dtype=np.float32)}
        outputs = self.session.run(self.output_names, feed)
        return {
            n: np.asarray(v, dtype=np.float32)
            for n, v in zip(self.output_names, outputs, strict=True)
        }

    def close(self) -> None:
        del self.session


class EchoBackend:
    facts = FACTS

    def describe(self) -> dict[str, Any]:
        return {"onnxruntimeVersion": ort.__version__, "cpuModel": platform.processor() or "?"}

    def target(
        self, options: EngineOptions, described: dict[str, Any]
    ) -> CompatibilityRecord | None:
        # A copy of the ONNX model runs anywhere ONNX Runtime does: the record names the
        # one that verified it, under the backend's own status key.
        return CompatibilityRecord({RECORD_KEY: str(described["onnxruntimeVersion"])})

    def unable_to_run(self, described: dict[str, Any]) -> str | None:
        return None

    def timing_cache_key(self, described: dict[str, Any]) -> str | None:
        return None

    def build(self, request: BuildRequest) -> BuiltEngine:
        request.engine_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(request.onnx_path, request.engine_path)
        details = {"echoOf": str(request.onnx_path)}
        label = request.options.own(EchoOptions).echo_label
        if label is not None:
            details["echoLabel"] = label  # its own flag, which the operator passes
        return BuiltEngine(request.engine_path, NAME, details=details)

    def load(self, engine_path: Path) -> EchoRunner:
        return EchoRunner(engine_path)


BACKEND = EchoBackend()
