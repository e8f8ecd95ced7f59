"""Check an exported ONNX model against the Keras model it came from.

Two checks, both must pass before anything is encrypted or published:
`onnx.checker.check_model` (full check, with shape inference), and ONNX
Runtime's outputs against Keras' on the same inputs, max absolute difference
per output under a tolerance (1e-4 by default: float32 reordering noise is
around 1e-6 for this network, a wrong layer or weight is orders above).
"""

from __future__ import annotations

from dataclasses import dataclass
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
    report = FidelityReport(max_abs_diff=diffs, tolerance=tolerance, samples=len(inputs))
    if report.worst > tolerance:
        raise FidelityError(
            f"the ONNX model does not reproduce the Keras model: max abs difference "
            f"{report.worst:.3g} > tolerance {tolerance:g} ({diffs})"
        )
    return report
