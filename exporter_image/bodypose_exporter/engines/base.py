"""The engine interface, in the spirit of Polygraphy's runners: build once, run many.

A backend turns the exported FP32 ONNX model (plus, for int8, the calibration
cache or the QDQ model) into a runnable artifact for the hardware it runs on,
and loads that artifact into a runner. The rest of the exporter holds a
backend chosen by name (`registry.backend_by_name`) and never knows which one
it is. Followed: NVIDIA/TensorRT `tools/Polygraphy/polygraphy/backend/*`
(loaders that build, runners that infer, one shape for every backend).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class BuildRequest:
    """What to build; paths are local (the stage fetched any s3:// inputs).

    int8 sources, in order of preference: `calibration_cache` (cal.bin) when
    the file exists; else `calibration_data` (the tensorfile) when given: the
    backend calibrates and writes the cache to `calibration_cache` (TAO's
    `--cal_cache_file` semantics: used if present, written if not); else
    `qdq_model` (explicitly quantized ONNX). TensorRT chooses between the
    QDQ model and the cache by `int8_route` (`engines.trt.builder`).
    """

    onnx_path: Path
    engine_path: Path
    precision: str  # fp32 | fp16 | int8
    max_batch_size: int = 1
    max_workspace_size: int = 2 << 30
    strict_types: bool = False
    calibration_cache: Path | None = None
    calibration_data: Path | None = None
    calibration_batches: int = 10
    calibration_batch_size: int = 1
    qdq_model: Path | None = None
    timing_cache: Path | None = None
    int8_route: str = "auto"  # tensorrt: auto | qdq | cal_bin
    hardware_compatibility: str = "none"  # tensorrt: none | ampere+
    #: onnxruntime int8: the CPU class to build for (`engines.ort.hardware`); None: this CPU's.
    int8_instruction_set: str | None = None


@dataclass(frozen=True)
class BuiltEngine:
    """A built artifact, the hardware it was built for, and how it was built."""

    path: Path
    backend: str
    hardware: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    #: What the artifact needs of the machine that loads it, when the backend says so
    #: here (onnxruntime int8: the CPU class); TensorRT's record is the stage's.
    compatibility: dict[str, str] | None = None


class EngineRunner(Protocol):
    """A loaded artifact: NHWC float32 batches in, outputs by tensor name out."""

    input_name: str
    output_names: list[str]
    max_batch_size: int

    def run(self, inputs: npt.NDArray[np.float32]) -> dict[str, npt.NDArray[np.float32]]: ...

    def close(self) -> None: ...


class EngineBackend(Protocol):
    name: str

    def describe(self) -> dict[str, Any]:
        """The hardware this process would build for (checked before a build starts)."""
        ...

    def build(self, request: BuildRequest) -> BuiltEngine: ...

    def load(self, engine_path: Path) -> EngineRunner: ...


def run_batched(
    runner: EngineRunner, inputs: npt.NDArray[np.float32]
) -> dict[str, npt.NDArray[np.float32]]:
    """Run `inputs` (any count) through `runner` in chunks of its max batch size."""
    step = max(1, runner.max_batch_size)
    parts: dict[str, list[npt.NDArray[np.float32]]] = {}
    for start in range(0, len(inputs), step):
        for name, value in runner.run(inputs[start : start + step]).items():
            parts.setdefault(name, []).append(value)
    return {name: np.concatenate(values) for name, values in parts.items()}
