"""The bound-output collector against a straightforward reference: the same cal.bin, byte for byte.

The reference is what calibration computes without any of the collector's
machinery: the plain model's float activations fetched with `session.run`,
each measured tensor histogrammed in numpy (`AbsHistogram.add_values`), the
same thresholds and cache writer. `RangeCollector` reuses its output buffers
from one batch to the next (issue 32); a buffer read before it was written,
or kept from a previous batch, would change the counts and so the cache.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from bodypose_exporter.calibration import calibration_cache as cal_cache
from bodypose_exporter.calibration.batches import ImageBatches
from bodypose_exporter.calibration.calibration_cache import CalibrationCache
from bodypose_exporter.calibration.collect import RangeCollector
from bodypose_exporter.calibration.histogram import AbsHistogram
from bodypose_exporter.calibration.images import list_images
from bodypose_exporter.calibration.tensors import CalibrationTensors, select_tensors
from bodypose_exporter.calibration.thresholds import choose_amax
from bodypose_exporter.stages.local_calibration import CalibrationOptions, run_calibration
from tests.calibration.conftest import HEIGHT, WIDTH, WriteImages


def _reference_histograms(
    model_path: Path, tensors: CalibrationTensors, batches: list[np.ndarray]
) -> dict[str, AbsHistogram]:
    plain = onnx.load(str(model_path))
    known = {o.name for o in plain.graph.output}
    plain.graph.output.extend(
        onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None)
        for n in tensors.measured
        if n not in known
    )
    session = ort.InferenceSession(plain.SerializeToString(), providers=["CPUExecutionProvider"])
    histograms = {name: AbsHistogram() for name in tensors.measured}
    for batch in batches:
        values = session.run(list(tensors.measured), {"input_1:0": batch})
        for name, value in zip(tensors.measured, values, strict=True):
            histograms[name].add_values(value)
    return histograms


@pytest.mark.parametrize("method", ["entropy", "percentile", "minmax"])
def test_cal_bin_is_byte_identical_to_the_reference(
    tmp_path: Path, small_model: Path, write_images: WriteImages, method: str
) -> None:
    write_images(tmp_path / "images", 10, size=(48, 80))
    options = CalibrationOptions(
        cache_file=tmp_path / "cal.bin",
        batches=4,
        batch_size=2,
        input_hw=(HEIGHT, WIDTH),
        image_dir=tmp_path / "images",
        method=method,
        write_qdq=False,
        held_back=0,
        trt_version="10.3.0",
        progress=False,
    )
    run_calibration(small_model, options, tmp_path / "out")

    tensors = select_tensors(onnx.load(str(small_model)))
    listing = list_images(tmp_path / "images", options.seed)
    with ImageBatches(listing.images, options.batch_size, options.input_hw) as images:
        batches = list(images.batches(options.batches))
    histograms = _reference_histograms(small_model, tensors, batches)
    measured = {name: choose_amax(h, method) for name, h in histograms.items()}
    amax = {name: measured[tensors.source(name)] for name in tensors.names}
    reference = tmp_path / "reference.bin"
    cal_cache.write(reference, CalibrationCache.from_amax(amax, options.trt_version))

    assert options.cache_file.read_bytes() == reference.read_bytes()


def test_a_batch_of_another_size_gets_its_own_buffers(small_model: Path) -> None:
    model = onnx.load(str(small_model))
    tensors = select_tensors(model)
    rng = np.random.default_rng(5)
    sizes = (3, 3, 1, 3)  # the third batch is smaller: new buffers, then new again
    batches = [rng.uniform(-0.5, 0.5, (n, HEIGHT, WIDTH, 3)).astype(np.float32) for n in sizes]
    with RangeCollector(model, tensors) as collector:
        for batch in batches:
            collector.update(batch)
        assert any(t.name.startswith("cal-count") for t in threading.enumerate())
    # Closed: its counting threads are gone, its histograms are still there to read.
    assert not any(t.name.startswith("cal-count") for t in threading.enumerate())

    reference = _reference_histograms(small_model, tensors, batches)
    for name in tensors.measured:
        got, want = collector.histograms[name], reference[name]
        assert (got.range, got.amax) == (want.range, want.amax), name
        np.testing.assert_array_equal(got.counts, want.counts, err_msg=name)
    assert collector.images == sum(sizes) and collector.batches == len(sizes)


def test_runs_of_one_image_give_the_whole_batch_ranges_and_counts(small_model: Path) -> None:
    # Batch 2's first image peaks exactly at its own grown range (2.0: index 2048, the top
    # edge), its second at 3.0, so the batch's range is 4.0 and the first image's run is
    # widened by one doubling: its edge value must land in bin 1024, not in the top bin.
    model = onnx.load(str(small_model))
    tensors = select_tensors(model)
    one, whole = RangeCollector(model, tensors), RangeCollector(model, tensors, images_per_run=4)
    rng = np.random.default_rng(7)
    first = rng.uniform(-1.0, 1.0, (2, HEIGHT, WIDTH, 3)).astype(np.float32)
    first[0, 0, 0, 0] = 1.0
    second = rng.uniform(-0.5, 0.5, (2, HEIGHT, WIDTH, 3)).astype(np.float32)
    second[0, 1, 1, 1], second[1, 2, 2, 2] = 2.0, -3.0
    for batch in (first, second, first * 0.25):
        one.update(batch)
        whole.update(batch)

    assert one.histograms["input_1:0"].range == 4.0
    assert one.histograms["input_1:0"].counts[1024] >= 1
    for name in tensors.measured:
        got, want = one.histograms[name], whole.histograms[name]
        assert (got.range, got.amax) == (want.range, want.amax), name
        np.testing.assert_array_equal(got.counts, want.counts, err_msg=name)
