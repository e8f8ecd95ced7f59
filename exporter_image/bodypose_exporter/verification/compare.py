"""Agreement figures between an engine and the FP32 ONNX Runtime reference, and their gates.

Figures, over the reference inputs the export kept (`reference.npz`):
- `maxAbsDiff`: the largest absolute difference over every output;
- `cosine`: the smallest per-output cosine similarity (heatmaps, PAFs);
- `peakAgreement`: the share of reference heatmap peaks (3x3 local maxima
  above 0.1 of each channel's range) found at the same pixel in the engine's
  heatmaps; peaks are what the bottom-up decoder keeps.
Default gates per precision; a failure names the figure, the gate and the
likely causes the TAO documentation lists for int8 (too little calibration
data, data unlike deployment data).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bodypose_exporter.errors import UserError

HEATMAP_SUFFIX = "heatmap_out/BiasAdd:0"

DEFAULT_GATES: dict[str, dict[str, float]] = {
    "fp32": {"maxAbsDiff": 1e-3, "cosine": 0.9999, "peakAgreement": 0.99},
    "fp16": {"maxAbsDiff": 0.05, "cosine": 0.999, "peakAgreement": 0.95},
    "int8": {"cosine": 0.98, "peakAgreement": 0.90},
}


class VerificationError(UserError):
    reason = "VerificationFailed"
    exit_code = 3


def _peaks(heatmaps: np.ndarray) -> np.ndarray:
    """Boolean mask of 3x3 local maxima above 10% of each channel's range (NHWC)."""
    padded = np.pad(heatmaps, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    h, w = heatmaps.shape[1:3]
    neighbours = np.stack(
        [
            padded[:, dy : dy + h, dx : dx + w]
            for dy in range(3)
            for dx in range(3)
            if (dy, dx) != (1, 1)
        ]
    )
    lo = heatmaps.min(axis=(1, 2), keepdims=True)
    hi = heatmaps.max(axis=(1, 2), keepdims=True)
    threshold = lo + 0.1 * (hi - lo)
    return bool_array((heatmaps > neighbours.max(axis=0)) & (heatmaps > threshold))


def bool_array(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=bool)


def figures(reference: dict[str, np.ndarray], got: dict[str, np.ndarray]) -> dict[str, float]:
    max_abs, cosines = 0.0, []
    for name, ref in reference.items():
        out = got[name].astype(np.float64)
        ref64 = ref.astype(np.float64)
        max_abs = max(max_abs, float(np.max(np.abs(out - ref64))))
        denom = np.linalg.norm(out) * np.linalg.norm(ref64)
        cosines.append(float(np.dot(out.ravel(), ref64.ravel()) / denom) if denom else 1.0)
    result = {"maxAbsDiff": max_abs, "cosine": min(cosines)}
    heat = next((n for n in reference if n.endswith(HEATMAP_SUFFIX)), None)
    if heat is not None:
        ref_peaks, got_peaks = _peaks(reference[heat]), _peaks(got[heat])
        total = int(ref_peaks.sum())
        result["peakAgreement"] = float((ref_peaks & got_peaks).sum() / total) if total else 1.0
    return result


@dataclass(frozen=True)
class Verdict:
    figures: dict[str, float]
    gates: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {"figures": self.figures, "gates": self.gates, "passed": True}


def check(
    precision: str, measured: dict[str, float], overrides: dict[str, float | None]
) -> Verdict:
    gates = dict(DEFAULT_GATES[precision])
    gates.update({k: v for k, v in overrides.items() if v is not None})
    failures = []
    for name, gate in gates.items():
        value = measured.get(name)
        if value is None:
            continue
        bad = value > gate if name == "maxAbsDiff" else value < gate
        if bad:
            cmp = ">" if name == "maxAbsDiff" else "<"
            failures.append(f"{name} {value:.4g} {cmp} gate {gate:g}")
    if failures:
        causes = (
            " Likely causes: too little calibration data (raise --batches / --batch_size), or "
            "calibration images unlike the deployment data."
            if precision == "int8"
            else ""
        )
        raise VerificationError(
            f"the {precision} engine disagrees with the FP32 reference: {'; '.join(failures)}."
            + causes
        )
    return Verdict(measured, gates)
