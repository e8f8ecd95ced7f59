"""Choosing a tensor's int8 range (amax) from its |x| histogram: entropy, percentile, minmax.

Entropy is TensorRT's calibration algorithm as NVIDIA published it (Migacz,
"8-bit Inference with TensorRT", GTC 2017) and reimplemented it in the open
for TensorRT's PyTorch quantization toolkit (NVIDIA/TensorRT
`tools/pytorch-quantization/pytorch_quantization/calib/histogram.py`,
`_compute_amax_entropy`):

- 2048-bin histogram of |x|; candidate thresholds are the bin edges
  i = 128 ... 2048;
- reference P = the first i bins, with every count above (outliers) added to
  bin i-1;
- candidate Q = the first i bins merged into 128 levels, each level spread
  evenly over the bins where P is non-empty (empty bins stay empty);
- pick the i with the smallest KL(P || Q) (the largest such i on ties);
  amax = edge i = i * bin width;
- the zero bin is replaced by its neighbour first (bins[0] = bins[1], as the
  toolkit does): after a ReLU half of all values are exactly zero, which int8
  represents exactly, and that spike would otherwise dominate the divergence.

Empty bins: taken literally, KL(P || Q) is infinite whenever the outliers land
in a bin where Q is empty, which happens for every candidate inside a gap
between the bulk of a distribution and a few far outliers, so the search
could never clip those outliers (the opposite of what entropy calibration is
for; TensorRT documents that it "usually suppresses outliers"). The open
implementations that handle this (MXNet's `_get_optimal_threshold`, ONNX
Runtime's `get_entropy_threshold` in quantization/calibrate.py, both after
the same GTC talk) smooth P and Q by giving empty bins eps = 1e-4 counts. We
do the same, without their compensating subtraction of at most 0.2 counts
from the non-empty bins: it keeps every candidate's divergence computable
from prefix sums, all 1921 candidates at once in O(bins x 128) numpy
operations (milliseconds per tensor, instead of a Python loop over the
candidates). amax is finally clamped to the largest |x| actually seen, since
a range beyond it only costs resolution.

Percentile: the upper edge of the bin where the |x| CDF reaches the
percentile (99.99 by default). Minmax: the largest |x| seen.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from bodypose_exporter.calibration.histogram import BINS, AbsHistogram

METHODS = ("entropy", "minmax", "percentile")
QUANTIZED_BINS = 128
START_BIN = 128
DEFAULT_PERCENTILE = 99.99
#: Counts given to empty bins of P and Q (MXNet / ONNX Runtime `smooth_distribution`).
SMOOTHING_EPS = 1e-4
#: Divergences this close to the minimum count as ties (float64 prefix-sum noise).
_TIE_TOLERANCE = 1e-12


def _xlogx(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    out = np.zeros_like(values)
    positive = values > 0
    out[positive] = values[positive] * np.log(values[positive])
    return out


def entropy_divergences(counts: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """KL(P || Q) of each candidate i = START_BIN..BINS (index i - START_BIN); inf if undefined."""
    bins = counts.astype(np.float64)
    bins[0] = bins[1]
    total = float(bins.sum())
    candidates = np.arange(START_BIN, BINS + 1)
    if total <= 0:
        return np.full(candidates.size, np.inf)

    prefix = np.concatenate(([0.0], np.cumsum(bins)))
    prefix_nonzero = np.concatenate(([0], np.cumsum(bins > 0)))
    prefix_xlogx = np.concatenate(([0.0], np.cumsum(_xlogx(bins))))

    kept = prefix[candidates]  # mass of the first i bins: Q's total
    outliers = total - kept
    last = bins[candidates - 1]
    # P's last bin is non-empty through its outliers alone: it joins the last level.
    extra = ((last <= 0) & (outliers > 0)).astype(np.float64)

    # Level k of candidate i covers bins [ceil(k*i/128), ceil((k+1)*i/128)).
    levels = np.arange(QUANTIZED_BINS + 1)
    starts = (levels[None, :] * candidates[:, None] + QUANTIZED_BINS - 1) // QUANTIZED_BINS
    level_sum = prefix[starts[:, 1:]] - prefix[starts[:, :-1]]
    level_filled = (prefix_nonzero[starts[:, 1:]] - prefix_nonzero[starts[:, :-1]]).astype(
        np.float64
    )
    level_filled[:, -1] += extra
    has_mass = (level_filled > 0) & (level_sum > 0)
    density = np.ones_like(level_sum)
    density[has_mass] = level_sum[has_mass] / level_filled[has_mass]
    # P's mass per level, outliers included in the last one.
    p_level = level_sum.copy()
    p_level[:, -1] += outliers
    # sum_j P_j log Q_j over non-empty P bins; a last bin holding only outliers in an
    # otherwise empty level meets a smoothed (eps) Q.
    last_empty = ~has_mass[:, -1] & (outliers > 0)
    sum_p_log_q = np.where(has_mass, p_level * np.log(density), 0.0).sum(axis=1)
    sum_p_log_q += np.where(last_empty, outliers * math.log(SMOOTHING_EPS), 0.0)

    p_last = last + outliers
    sum_p_log_p = prefix_xlogx[candidates - 1] + _xlogx(p_last)
    empty_p = candidates - prefix_nonzero[candidates] - extra  # bins smoothed to eps in P and Q
    p_total = total + SMOOTHING_EPS * empty_p
    q_total = kept + SMOOTHING_EPS * (empty_p + last_empty)
    with np.errstate(divide="ignore", invalid="ignore"):
        divergence = (sum_p_log_p - sum_p_log_q) / p_total + np.log(q_total) - np.log(p_total)
    divergence[~np.isfinite(divergence)] = np.inf
    clamped: npt.NDArray[np.float64] = np.maximum(divergence, 0.0)
    return clamped


def entropy_amax(hist: AbsHistogram) -> float:
    """TensorRT-style entropy (KL) calibration threshold of one histogram."""
    if hist.range <= 0 or hist.amax <= 0:
        return 0.0
    divergence = entropy_divergences(hist.counts)
    best = float(np.min(divergence))
    if not math.isfinite(best):
        return hist.amax
    ties = np.flatnonzero(divergence <= best + _TIE_TOLERANCE * max(1.0, abs(best)))
    edge = int(ties[-1]) + START_BIN
    return min(edge * hist.bin_width, hist.amax)


def percentile_amax(hist: AbsHistogram, percentile: float = DEFAULT_PERCENTILE) -> float:
    """Upper edge of the bin where the |x| CDF reaches `percentile` (0 < percentile <= 100)."""
    total = int(hist.counts.sum())
    if hist.range <= 0 or total == 0:
        return 0.0
    cdf = np.cumsum(hist.counts) / total
    index = int(np.searchsorted(cdf, percentile / 100.0))
    return min((min(index, BINS - 1) + 1) * hist.bin_width, hist.amax)


def choose_amax(hist: AbsHistogram, method: str, percentile: float = DEFAULT_PERCENTILE) -> float:
    if method == "entropy":
        return entropy_amax(hist)
    if method == "percentile":
        return percentile_amax(hist, percentile)
    if method == "minmax":
        return hist.amax
    raise ValueError(f"unknown calibration method {method!r}; choose from {', '.join(METHODS)}")
