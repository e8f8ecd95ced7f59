"""The entropy threshold search against an independent reference: ONNX Runtime's own
entropy calibrator (`onnxruntime.quantization.calibrate.HistogramCollector`, method
"entropy", `get_entropy_threshold`), on the same values.

Both follow the GTC 2017 search (Migacz, "8-bit Inference with TensorRT"), but
ONNX Runtime's is a variant, so the thresholds are compared within a tolerance:

- it histograms signed values, so it is given 2 x 2048 bins over [-max|x|, max|x|]
  (the same bin width as our 2048 bins of |x|) and 256 quantized bins (128 per
  side, our 128 levels); its candidates are then our 128 ... 2048 bins, and its
  upper threshold is one bin wider than ours (its slice has i bins left of zero,
  i + 1 right of it);
- it merges bins into levels with `size // 256` bins each and the remainder in
  the last level (ours: 128 levels as even as integers allow), it truncates Q to
  integers, and it spreads a level's mass over all of the level's bins, empty or
  not (ours: over the non-empty ones, as TensorRT);
- it smooths with eps taken off the non-empty bins (ours: eps added only).

On a smooth, gap-free distribution these differences move the minimum along a
flat KL valley: on the Gaussian below the two thresholds differ by 1.9 % (35
bins; up to 5.7 % with other draws of 400,000 values), on the uniform not at
all. Hence the tolerance: 8 % of the threshold, the largest difference seen
with a margin (the values are seeded, so the figures are reproduced, not
sampled anew). Where the histogram has a gap (a bulk and a few far outliers, or
two separate modes), spreading Q over empty bins dominates: ONNX
Runtime's Q gets mass where P has none, and the two thresholds inside the gap
differ by 10 to 25 %. There only what entropy calibration is for is asserted:
both clip the outliers and keep the bulk.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import numpy.typing as npt
import pytest
from onnxruntime.quantization.calibrate import HistogramCollector

from bodypose_exporter.calibration.histogram import BINS, AbsHistogram
from bodypose_exporter.calibration.thresholds import QUANTIZED_BINS, entropy_amax

TOLERANCE = 0.08  # relative, of the threshold: see the module docstring


def onnxruntime_threshold(values: npt.NDArray[np.float32]) -> float:
    collector = HistogramCollector(
        method="entropy",
        symmetric=True,
        num_bins=2 * BINS,
        num_quantized_bins=2 * QUANTIZED_BINS,
        percentile=99.99,
        scenario="same",
    )
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its progress
        collector.collect({"t": values})
        low, high, *_ = collector.compute_collection_result()["t"]
    assert float(low) == pytest.approx(-float(high), rel=0.01)  # symmetric data
    return float(high)


def ours(values: npt.NDArray[np.float32]) -> AbsHistogram:
    hist = AbsHistogram()
    hist.add_values(values)
    return hist


def _signs(rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
    return rng.choice([-1.0, 1.0], n)


def _cases() -> dict[str, npt.NDArray[np.float32]]:
    rng = np.random.default_rng(0)
    outliers = rng.uniform(30, 40, 40) * _signs(rng, 40)
    return {
        "gaussian": rng.normal(0, 1, 400_000).astype(np.float32),
        "uniform": rng.uniform(-3, 3, 400_000).astype(np.float32),
        "gaussian with 40 outliers at 30..40 sigma": np.concatenate(
            [rng.normal(0, 1, 400_000), outliers]
        ).astype(np.float32),
    }


CASES = _cases()
GAP_FREE = ("gaussian", "uniform")


@pytest.mark.parametrize("name", GAP_FREE)
def test_entropy_threshold_agrees_with_onnxruntime(name: str) -> None:
    values = CASES[name]
    hist = ours(values)
    mine = entropy_amax(hist)
    reference = onnxruntime_threshold(values)
    assert mine == pytest.approx(reference, rel=TOLERANCE), (
        f"{name}: ours {mine:.4f}, ONNX Runtime {reference:.4f} "
        f"({(mine - reference) / hist.bin_width:+.0f} bins of {hist.bin_width:.5f})"
    )


def test_both_clip_the_outliers_far_below_the_maximum() -> None:
    values = CASES["gaussian with 40 outliers at 30..40 sigma"]
    hist = ours(values)
    assert hist.amax > 30
    # The bulk is N(0, 1): both keep about 5 sigma and clip the 40 outliers.
    assert 4.0 < entropy_amax(hist) < 6.0
    assert 4.0 < onnxruntime_threshold(values) < 6.0
