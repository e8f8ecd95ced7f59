"""Check an exported ONNX model against the Keras model it came from.

Two checks, both must pass before anything is encrypted or published:
`onnx.checker.check_model` (full check, with shape inference), and ONNX
Runtime's outputs against Keras' on the same inputs, max absolute difference
per output under a tolerance (1e-4 by default: float32 reordering noise is
around 1e-6 for this network, a wrong layer or weight is orders above).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from bodypose_exporter.errors import FidelityError

DEFAULT_TOLERANCE = 1e-4


@dataclass(frozen=True)
class FidelityReport:
    """Max absolute ONNX-vs-Keras difference per output tensor."""

    max_abs_diff: dict[str, float]
    tolerance: float
    samples: int
    #: ONNX Runtime's outputs on the checked inputs: the FP32 reference later
    #: stages verify engines against (kept out of `as_dict`).
    onnx_outputs: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def worst(self) -> float:
        return max(self.max_abs_diff.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "maxAbsDiff": self.max_abs_diff,
            "worst": self.worst,
            "tolerance": self.tolerance,
            "samples": self.samples,
        }


def reference_inputs(height: int, width: int, count: int = 2, seed: int = 0) -> np.ndarray:
    """Inputs in the network's preprocessed range ((pixel - 128) / 256, i.e. [-0.5, 0.5))."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(count, height, width, 3)).astype(np.float32)
    return (pixels - 128.0) / 256.0


def ort_session(onnx_path: Path) -> ort.InferenceSession:
    """A CPU session; graph optimizations stay on, as deployment would run them."""
    return ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])


def compare_with_keras(
    keras_model: Any,
    onnx_path: Path,
    inputs: np.ndarray,
    tolerance: float = DEFAULT_TOLERANCE,
) -> FidelityReport:
    """Run both models on `inputs`; raise FidelityError past `tolerance`."""
    onnx.checker.check_model(str(onnx_path), full_check=True)
    session = ort_session(onnx_path)
    input_name = session.get_inputs()[0].name
    output_names = [o.name for o in session.get_outputs()]
    got = session.run(output_names, {input_name: inputs})
    expected = keras_model(inputs, training=False)
    diffs: dict[str, float] = {}
    for name, g, e in zip(output_names, got, expected, strict=True):
        e_np = np.asarray(e)
        if g.shape != e_np.shape:
            raise FidelityError(f"ONNX output {name} has shape {g.shape}, Keras gives {e_np.shape}")
        diffs[name] = float(np.max(np.abs(g - e_np)))
    report = FidelityReport(
        max_abs_diff=diffs,
        tolerance=tolerance,
        samples=len(inputs),
        onnx_outputs=dict(zip(output_names, got, strict=True)),
    )
    if report.worst > tolerance:
        raise FidelityError(
            f"the ONNX model does not reproduce the Keras model: max abs difference "
            f"{report.worst:.3g} > tolerance {tolerance:g} ({diffs})"
        )
    return report


def write_verification_reference(
    path: Path, inputs: np.ndarray, outputs: dict[str, np.ndarray]
) -> None:
    """Reference inputs and FP32 outputs for the build stage's verification.

    Layout: `input` (N, H, W, 3) float32, `output_names` (str array), and
    `output_<i>` in that order (tensor names hold '/' and ':', which make poor
    member names inside an .npz).
    """
    arrays: dict[str, np.ndarray] = {
        "input": inputs.astype(np.float32),
        "output_names": np.array(list(outputs)),
    }
    for i, value in enumerate(outputs.values()):
        arrays[f"output_{i}"] = value.astype(np.float32)
    with path.open("wb") as f:
        np.savez_compressed(f, **arrays)  # type: ignore[arg-type]


def read_verification_reference(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    with np.load(path, allow_pickle=False) as data:
        names = [str(n) for n in data["output_names"]]
        return data["input"], {n: data[f"output_{i}"] for i, n in enumerate(names)}
