"""Streaming |x| histograms: power-of-two growth is exact, and the graph agrees with numpy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from bodypose_exporter.calibration.collect import RangeCollector
from bodypose_exporter.calibration.histogram import (
    BINS,
    AbsHistogram,
    bin_indices,
    count_indices,
    count_with_top_edge,
    grown_range,
    rebin,
    widen,
)
from bodypose_exporter.calibration.tensors import select_tensors


def test_first_batch_sets_the_range_and_later_ones_double_it() -> None:
    assert grown_range(0.0, 3.7) == np.float32(3.7)
    assert grown_range(2.0, 1.5) == 2.0
    assert grown_range(2.0, 2.5) == 4.0
    assert grown_range(2.0, 9.0) == 16.0
    assert grown_range(2.0, 0.0) == 2.0


def test_growth_gives_the_histogram_of_the_final_range() -> None:
    rng = np.random.default_rng(1)
    batches = [rng.normal(0, scale, 10_000).astype(np.float32) for scale in (1, 1, 3, 1, 20, 2)]
    streamed = AbsHistogram()
    for batch in batches:
        streamed.add_values(batch)
    everything = np.concatenate(batches)
    expected = count_indices(bin_indices(everything, streamed.range))
    # The one value that set the first range sat on its top edge and was counted in the
    # top bin (2047); after growing 2**j it is one merged bin below its exact place.
    first_range = np.abs(batches[0]).max()
    j = int(np.log2(streamed.range / first_range))
    expected[BINS >> j] -= 1
    expected[(BINS - 1) >> j] += 1
    np.testing.assert_array_equal(streamed.counts, expected)
    assert streamed.amax == np.abs(everything).max()
    assert streamed.counts.sum() == everything.size


def test_rebin_merges_neighbours() -> None:
    counts = np.arange(BINS, dtype=np.int64)
    merged = rebin(counts, 2)
    assert merged[0] == 0 + 1 + 2 + 3 and merged[BINS // 4 - 1] == sum(range(BINS - 4, BINS))
    assert (merged[BINS // 4 :] == 0).all() and merged.sum() == counts.sum()
    assert rebin(counts, 11)[0] == counts.sum()


def test_counting_is_exact_beyond_float32_precision() -> None:
    indices = np.zeros((1 << 24) + 3, dtype=np.uint16)
    indices[-1] = BINS - 1
    counts = count_indices(indices)
    assert counts[0] == (1 << 24) + 2 and counts[-1] == 1


def test_calibration_graph_matches_numpy_on_the_activations(small_model: Path) -> None:
    model = onnx.load(str(small_model))
    tensors = select_tensors(model)
    collector = RangeCollector(model, tensors)

    plain = onnx.load(str(small_model))
    plain.graph.output.extend(
        onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None)
        for n in tensors.measured
        if n not in {o.name for o in plain.graph.output}
    )
    session = ort.InferenceSession(plain.SerializeToString(), providers=["CPUExecutionProvider"])
    reference = {name: AbsHistogram() for name in tensors.measured}
    rng = np.random.default_rng(2)
    for scale in (0.2, 0.5, 0.1):  # the second batch grows most ranges
        batch = rng.uniform(-scale, scale, (2, 64, 96, 3)).astype(np.float32)
        collector.update(batch)
        values = session.run(list(tensors.measured), {"input_1:0": batch})
        for name, value in zip(tensors.measured, values, strict=True):
            reference[name].add_values(value)

    for name in tensors.measured:
        got, want = collector.histograms[name], reference[name]
        assert got.range == want.range, name
        assert got.amax == want.amax, name
        np.testing.assert_array_equal(got.counts, want.counts, err_msg=name)
    assert collector.images == 6 and collector.batches == 3


def test_indices_past_the_top_edge_count_in_the_top_bin() -> None:
    # The graph does not clip: a value equal to the range gives index 2048.
    counts = count_indices(np.array([0, 5, BINS - 1, BINS, BINS + 1], dtype=np.uint16))
    assert counts[0] == 1 and counts[5] == 1 and counts[BINS - 1] == 3 and counts.sum() == 5


def test_widening_a_run_matches_binning_at_the_wider_range() -> None:
    rng = np.random.default_rng(3)
    values = rng.uniform(-1.0, 1.0, 100_000).astype(np.float32)
    values[:3] = (1.0, -1.0, 0.5)  # the top edge itself, twice
    for doublings in (0, 1, 3, 11, 12, 20):
        wide = np.float32(2.0**doublings)
        direct = count_indices(bin_indices(values, float(wide)))
        scaled = np.abs(values) * np.float32(BINS)  # the graph's indices at range 1.0
        widened = widen(count_with_top_edge(scaled.astype(np.uint16)), doublings)
        np.testing.assert_array_equal(widened, direct, err_msg=str(doublings))
