"""Streaming |x| histograms with TensorRT's range growth: 2048 bins, range doubled on overflow.

TensorRT's developer guide (INT8 calibration, "Calibration batch size"): for
each calibration batch TensorRT updates every activation tensor's histogram;
"if it encounters a value in the activation tensor, larger than the current
histogram max, the histogram range is increased by a power of two to
accommodate the new maximum value". The first batch sets the range (MLPerf
inference v0.5 calibration notes: "range is set by the initial image batch").

Why this and not two passes (pass 1: maximum, pass 2: histograms): a second
pass doubles the forward passes, the dominant cost (about 0.6 s per 320x448
image on two cores), while growing by powers of two is exact and cheap:
doubling the range merges bins pairwise, so no count ever moves to a wrong
bin and no activation is kept. The price is TensorRT's own: a range grown on
a late batch leaves the upper bins of the final histogram empty, so large,
well-shuffled batches give the best resolution (the same advice TensorRT's
guide gives). Bin index = floor(|x| * 2048 / range), clamped to 2047, with the
float32 arithmetic the ONNX graph uses (see `augment`).

Counting the bin indices uses OpenCV's `calcHist` on uint16 indices: about
four times faster than `numpy.bincount` (which first copies to intp), and it
releases the GIL. It counts in int32 and returns float32, so we call it on
chunks of at most 2**24 elements, where float32 counts are still exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

BINS = 2048
_EXACT_FLOAT32_COUNT = 1 << 24
_TINY = np.float32(1e-30)

Counts = npt.NDArray[np.int64]


def grown_range(current: float, amax: float) -> float:
    """The new range after seeing `amax`: first batch sets it, later ones double it as needed.

    Mirrors the ONNX subgraph in `augment` (float32 arithmetic), so numpy
    reference and graph agree bit for bit.
    """
    cur = np.float32(current)
    top = np.float32(amax)
    if cur <= 0:
        return float(top)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.ceil(np.log(top / cur) / np.float32(math.log(2)))
    k = np.maximum(k, np.float32(0)) if np.isfinite(k) else np.float32(0)
    return float(cur * np.power(np.float32(2), np.float32(k)))


def bin_indices(values: npt.NDArray[np.float32], range_: float) -> npt.NDArray[np.uint16]:
    """Reference (numpy) of the graph's bin computation for |values| in [0, range_]."""
    scale = np.float32(BINS) / max(np.float32(range_), _TINY)
    scaled = np.abs(values.astype(np.float32)) * scale
    return np.clip(scaled, np.float32(0), np.float32(BINS - 1)).astype(np.uint16)


def _count_below_top(flat: npt.NDArray[np.uint16]) -> Counts:
    """Counts of the indices below BINS (calcHist leaves out those outside [0, BINS))."""
    counts = np.zeros(BINS, dtype=np.int64)
    for start in range(0, flat.size, _EXACT_FLOAT32_COUNT):
        chunk = flat[start : start + _EXACT_FLOAT32_COUNT].reshape(1, -1)
        hist = cv2.calcHist([chunk], [0], None, [BINS], [0, BINS])
        counts += np.rint(hist.reshape(-1)).astype(np.int64)
    return counts


def count_indices(indices: npt.NDArray[np.uint16]) -> Counts:
    """Counts of bin indices (uint16 array, any shape), exactly, as int64 over 2048 bins.

    Indices of 2048 and above (values at the range's top edge, which the graph
    does not clip) are counted in the top bin, as clamping would have put them.
    """
    flat = np.ascontiguousarray(indices).reshape(-1)
    counts = _count_below_top(flat)
    counts[BINS - 1] += flat.size - int(counts.sum())
    return counts


def count_with_top_edge(indices: npt.NDArray[np.uint16]) -> Counts:
    """Counts over BINS + 1 bins: the last one holds the indices of BINS and above (values
    at the range's top edge), which `count_indices` folds into the top bin."""
    flat = np.ascontiguousarray(indices).reshape(-1)
    counts = np.zeros(BINS + 1, dtype=np.int64)
    counts[:BINS] = _count_below_top(flat)
    counts[BINS] = flat.size - int(counts[:BINS].sum())
    return counts


def widen(counts: Counts, doublings: int) -> Counts:
    """BINS counts of a run binned over range r, from its `count_with_top_edge` counts over
    r / 2**doublings (the same power-of-two step as `rebin`, exact: the graph's scaled values
    differ by exactly 2**doublings, and trunc(y / 2**d) == trunc(y) >> d for y >= 0)."""
    out = np.zeros(BINS, dtype=np.int64)
    shift = min(max(doublings, 0), int(math.log2(BINS)) + 1)  # past 12 all go to bin 0
    target = np.minimum(np.arange(BINS + 1) >> shift, BINS - 1)
    np.add.at(out, target, counts)
    return out


def rebin(counts: Counts, doublings: int) -> Counts:
    """Counts of a histogram whose range grew by 2**doublings: merge groups of bins."""
    if doublings <= 0:
        return counts
    if doublings >= int(math.log2(BINS)):
        out = np.zeros(BINS, dtype=np.int64)
        out[0] = counts.sum()
        return out
    group = 1 << doublings
    out = np.zeros(BINS, dtype=np.int64)
    out[: BINS // group] = counts.reshape(-1, group).sum(axis=1)
    return out


@dataclass
class AbsHistogram:
    """|x| histogram of one tensor over all batches seen so far."""

    counts: Counts = field(default_factory=lambda: np.zeros(BINS, dtype=np.int64))
    range: float = 0.0  # upper edge of the last bin; 0 until a non-zero value was seen
    amax: float = 0.0  # exact max |x| seen

    @property
    def bin_width(self) -> float:
        return self.range / BINS

    def add(self, counts: Counts, range_: float, amax: float) -> None:
        """Merge one batch's counts, computed over [0, range_] (range_ = grown_range(...))."""
        if not (math.isfinite(range_) and math.isfinite(amax)):
            raise ValueError(f"non-finite activation range {range_} / max {amax}")
        if self.range > 0 and range_ > 0 and range_ != self.range:
            ratio = range_ / self.range
            doublings = round(math.log2(ratio))
            if doublings < 0 or not math.isclose(ratio, 2.0**doublings, rel_tol=1e-6):
                raise ValueError(f"range went from {self.range} to {range_}: not a doubling")
            self.counts = rebin(self.counts, doublings)
        if range_ > 0:
            self.range = range_
        self.counts = self.counts + counts
        self.amax = max(self.amax, amax)

    def add_values(self, values: npt.NDArray[np.float32]) -> None:
        """Numpy path for one batch of raw values (tests and small tensors)."""
        amax = float(np.max(np.abs(values))) if values.size else 0.0
        range_ = grown_range(self.range, amax)
        self.add(count_indices(bin_indices(values, range_)), range_, amax)
