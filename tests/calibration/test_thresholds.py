"""Range selection: the entropy search against a direct implementation, on known distributions."""

from __future__ import annotations

import numpy as np
import pytest

from bodypose_exporter.calibration.histogram import BINS, AbsHistogram
from bodypose_exporter.calibration.thresholds import (
    SMOOTHING_EPS,
    START_BIN,
    choose_amax,
    entropy_amax,
    entropy_divergences,
    percentile_amax,
)


def _direct_divergences(counts: np.ndarray) -> np.ndarray:
    """The GTC 2017 search, one candidate at a time, empty bins smoothed to eps counts."""
    bins = counts.astype(np.float64).copy()
    bins[0] = bins[1]
    out = []
    for i in range(START_BIN, BINS + 1):
        p = bins[:i].copy()
        p[-1] += bins[i:].sum()
        level = np.floor(np.arange(i) * 128 / i).astype(int)
        mass = np.bincount(level, weights=bins[:i], minlength=128)
        spread = np.bincount(level, weights=(p > 0).astype(float), minlength=128)
        share = np.divide(mass, spread, out=np.zeros(128), where=spread > 0)
        q = np.where(p > 0, share[level], 0.0)
        p = np.where(p > 0, p, SMOOTHING_EPS)
        q = np.where(q > 0, q, SMOOTHING_EPS)
        p, q = p / p.sum(), q / q.sum()
        out.append(float(np.sum(p * np.log(p / q))))
    return np.array(out)


def _histogram(values: np.ndarray) -> AbsHistogram:
    hist = AbsHistogram()
    hist.add_values(values.astype(np.float32))
    return hist


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorised_divergence_equals_the_direct_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = np.concatenate([rng.laplace(0, 1, 200_000), rng.normal(0, 8, 300)])
    values[rng.random(values.size) < 0.3] = 0.0  # a ReLU-like spike at zero
    counts = _histogram(values).counts
    counts[rng.integers(0, BINS, 50)] = 0  # holes, as sparse tails have
    np.testing.assert_allclose(
        entropy_divergences(counts), _direct_divergences(counts), rtol=1e-7, atol=1e-10
    )


def test_uniform_values_keep_almost_the_whole_range() -> None:
    values = np.random.default_rng(3).uniform(0, 1, 500_000)
    hist = _histogram(values)
    assert entropy_amax(hist) > 0.95 * hist.amax


def test_rare_outliers_are_clipped_away() -> None:
    rng = np.random.default_rng(4)
    values = np.concatenate([rng.normal(0, 1, 1_000_000), [60.0, -70.0, 80.0]])
    amax = entropy_amax(_histogram(values))
    assert 2.0 < amax < 10.0  # a few sigma, nowhere near the outliers at 80


def test_relu_output_threshold_ignores_the_zero_spike() -> None:
    rng = np.random.default_rng(5)
    pre = rng.normal(0, 1, 1_000_000)
    relu = np.maximum(pre, 0)
    assert entropy_amax(_histogram(relu)) == pytest.approx(
        entropy_amax(_histogram(np.abs(pre))), rel=0.15
    )


def test_percentile_and_minmax() -> None:
    values = np.random.default_rng(6).uniform(-1, 1, 1_000_000)
    hist = _histogram(values)
    assert choose_amax(hist, "minmax") == hist.amax
    assert percentile_amax(hist, 50.0) == pytest.approx(0.5, abs=2 * hist.bin_width)
    assert percentile_amax(hist, 100.0) == hist.amax


def test_all_zero_tensor_gets_zero_range() -> None:
    hist = _histogram(np.zeros(1000))
    assert entropy_amax(hist) == 0.0 and percentile_amax(hist) == 0.0 and hist.amax == 0.0


def test_unknown_method_is_refused() -> None:
    with pytest.raises(ValueError, match="entropy, minmax, percentile"):
        choose_amax(AbsHistogram(), "mse")
