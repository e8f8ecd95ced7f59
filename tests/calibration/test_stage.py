"""The calibration stage end to end, and every bad input with the message a user sees."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from bodypose_exporter.calibration import calibration_cache as cal_cache
from bodypose_exporter.calibration.images import list_images
from bodypose_exporter.calibration.tensorfile import TensorFileWriter, inspect
from bodypose_exporter.calibration.tensors import select_tensors
from bodypose_exporter.errors import UserError
from bodypose_exporter.stages.local_calibration import CalibrationOptions, run_calibration
from tests.calibration.conftest import HEIGHT, WIDTH, WriteImages, picture

SENTENCE = "The images must number at least batches x batchSize"


def _options(tmp_path: Path, **overrides: object) -> CalibrationOptions:
    base = CalibrationOptions(
        cache_file=tmp_path / "cal.bin",
        batches=3,
        batch_size=2,
        input_hw=(HEIGHT, WIDTH),
        image_dir=tmp_path / "images",
        data_file=tmp_path / "cal.tensorfile",
        held_back=4,
        progress=False,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def test_calibrates_from_varied_images(
    tmp_path: Path, small_model: Path, write_images: WriteImages
) -> None:
    images = tmp_path / "images"
    write_images(images, 4, size=(48, 80))
    write_images(images, 1, size=(3, 5), start=10)  # tiny
    write_images(images, 1, size=(2400, 3200), start=11)  # very large
    cv2.imwrite(str(images / "gray.png"), picture(60, 40, 12)[..., 0])
    bgra = np.dstack([picture(50, 90, 13), np.full((50, 90), 200, np.uint8)])
    cv2.imwrite(str(images / "rgba.png"), bgra)
    write_images(images, 2, size=(64, 96), start=20, suffix=".jpeg")
    options = _options(tmp_path)

    result = run_calibration(small_model, options, tmp_path / "out")

    assert not result.cache_reused and result.images == 6 and result.batches == 3
    names = select_tensors(onnx.load(str(small_model))).names
    cache = cal_cache.read(options.cache_file)
    assert list(cache.scales) == list(names) and result.tensors == len(names)
    assert cache.header == "TRT-100300-EntropyCalibration2"
    assert cache.amax()["input_1:0"] == pytest.approx(0.5, abs=0.01)
    assert all(scale > 0 for scale in cache.scales.values())
    # Tensors that share a range share a scale (Transpose output, pre-Relu conv output).
    assert cache.scales["nchw:0"] == cache.scales["input_1:0"]
    assert cache.scales["block_1a_conv_1/BiasAdd:0"] == cache.scales["block_1a_conv_1/Relu:0"]

    info = inspect(options.data_file)  # type: ignore[arg-type]
    assert result.tensorfile_written and (info.count, info.record_shape) == (3, (2, 64, 96, 3))
    assert result.ranges_file is not None and result.ranges_file.exists()

    assert result.qdq_model is not None
    qdq = onnx.load(str(result.qdq_model))
    assert any(n.op_type == "QuantizeLinear" for n in qdq.graph.node)
    session = ort.InferenceSession(str(result.qdq_model), providers=["CPUExecutionProvider"])
    outputs = session.run(None, {"input_1:0": np.zeros((1, 64, 96, 3), np.float32)})
    assert [o.shape for o in outputs] == [(1, 16, 24, 38), (1, 16, 24, 19)]

    agreement = result.agreement
    assert agreement is not None and agreement.images == 4
    assert agreement.heatmap_cosine_mean > 0.95 and agreement.paf_cosine_mean > 0.95
    assert 0.0 <= agreement.peak_match <= 1.0


def test_same_ranges_from_the_tensorfile_and_cache_reuse(
    tmp_path: Path, small_model: Path, write_images: WriteImages
) -> None:
    write_images(tmp_path / "images", 8)
    first = run_calibration(small_model, _options(tmp_path), tmp_path / "out")
    written = (tmp_path / "cal.bin").read_bytes()

    # The tensorfile alone (no image directory) gives byte-identical ranges.
    (tmp_path / "cal.bin").unlink()
    from_file = run_calibration(small_model, _options(tmp_path, image_dir=None), tmp_path / "out2")
    assert not from_file.tensorfile_written and from_file.images == first.images
    assert (tmp_path / "cal.bin").read_bytes() == written

    # An existing cache is reused: no data needed, nothing recalibrated.
    reused = run_calibration(
        small_model,
        _options(tmp_path, image_dir=None, data_file=tmp_path / "absent.tensorfile"),
        tmp_path / "out3",
    )
    assert reused.cache_reused and reused.images == 0 and reused.tensors == first.tensors
    assert not (tmp_path / "absent.tensorfile").exists()
    assert (tmp_path / "cal.bin").read_bytes() == written
    assert reused.qdq_model is not None and reused.qdq_model.exists()


def test_cache_missing_a_tensor_warns_and_keeps_its_nodes_in_float(
    tmp_path: Path,
    small_model: Path,
    write_images: WriteImages,
    caplog: pytest.LogCaptureFixture,
) -> None:
    write_images(tmp_path / "images", 6)
    run_calibration(small_model, _options(tmp_path, data_file=None), tmp_path / "out")
    cache = cal_cache.read(tmp_path / "cal.bin")
    dropped = "block_1a_conv_1/Relu:0"
    scales = {k: v for k, v in cache.scales.items() if k != dropped}
    cal_cache.write(tmp_path / "cal.bin", cal_cache.CalibrationCache(scales, cache.version))

    with caplog.at_level(logging.WARNING):
        reused = run_calibration(
            small_model, _options(tmp_path, image_dir=None, data_file=None), tmp_path / "out2"
        )
    assert reused.cache_reused
    assert f"has no scale for 1 of the model's {cache_len(cache)} tensors" in caplog.text
    assert "stay in float in the QDQ model" in caplog.text
    assert reused.qdq_model is not None
    qdq = onnx.load(str(reused.qdq_model))
    # The tensor without a range is never quantized ...
    assert any(dropped in n.output for n in qdq.graph.node)
    assert not any(n.op_type == "QuantizeLinear" and dropped in n.input for n in qdq.graph.node)
    assert any(n.op_type == "QuantizeLinear" for n in qdq.graph.node)
    # ... and the model still runs.
    session = ort.InferenceSession(str(reused.qdq_model), providers=["CPUExecutionProvider"])
    x = np.zeros((1, HEIGHT, WIDTH, 3), np.float32)
    assert all(np.isfinite(o).all() for o in session.run(None, {"input_1:0": x}))


def cache_len(cache: cal_cache.CalibrationCache) -> int:
    return len(cache.scales)


def test_methods_give_different_ranges(
    tmp_path: Path, small_model: Path, write_images: WriteImages
) -> None:
    write_images(tmp_path / "images", 6)
    amax = {}
    for method in ("entropy", "minmax", "percentile"):
        run_calibration(
            small_model,
            _options(tmp_path, method=method, data_file=None, write_qdq=False),
            tmp_path / method,
        )
        amax[method] = cal_cache.read(tmp_path / "cal.bin").amax()
        (tmp_path / "cal.bin").unlink()
    tensor = "block_2a_conv_1/Relu:0"
    assert amax["minmax"][tensor] >= amax["percentile"][tensor]
    assert amax["minmax"][tensor] >= amax["entropy"][tensor]
    assert amax["minmax"] != amax["entropy"]


def test_missing_image_directory(tmp_path: Path, small_model: Path) -> None:
    with pytest.raises(UserError, match=r"--cal_image_dir .*images does not exist"):
        run_calibration(small_model, _options(tmp_path), tmp_path / "out")


def test_empty_image_directory_is_refused_before_any_work(
    tmp_path: Path, small_model: Path
) -> None:
    (tmp_path / "images").mkdir()
    with pytest.raises(UserError) as err:
        run_calibration(small_model, _options(tmp_path), tmp_path / "out")
    assert str(err.value) == (
        f"{SENTENCE}: --cal_image_dir {tmp_path / 'images'} holds no images "
        "(.jpg, .jpeg, .png), fewer than --batches 3 x --batch_size 2 = 6"
    )
    assert not (tmp_path / "out").exists() and not (tmp_path / "cal.bin").exists()


def test_too_few_images_counting_only_images(
    tmp_path: Path, small_model: Path, write_images: WriteImages
) -> None:
    write_images(tmp_path / "images", 5)
    (tmp_path / "images" / "notes.txt").write_text("x")
    with pytest.raises(UserError) as err:
        run_calibration(small_model, _options(tmp_path), tmp_path / "out")
    assert str(err.value).startswith(f"{SENTENCE}: --cal_image_dir")
    assert "holds 5 images (.jpg, .jpeg, .png), fewer than --batches 3 x --batch_size 2 = 6" in (
        str(err.value)
    )
    assert "1 other files were ignored" in str(err.value)
    assert not (tmp_path / "cal.tensorfile").exists()


def test_non_image_files_are_ignored_counted_and_logged(
    tmp_path: Path,
    small_model: Path,
    write_images: WriteImages,
    caplog: pytest.LogCaptureFixture,
) -> None:
    images = tmp_path / "images"
    write_images(images, 6)
    for name in ("labels.json", "README.md", "thumbs.db"):
        (images / name).write_text("not an image")
    with caplog.at_level(logging.WARNING):
        result = run_calibration(small_model, _options(tmp_path, write_qdq=False), tmp_path / "out")
    assert result.ignored_files == 3 and result.images == 6
    assert "ignored 3 files" in caplog.text and "labels.json" in caplog.text


def _corrupt_jpeg(path: Path) -> None:
    ok, data = cv2.imencode(".jpg", picture(120, 160, 99))
    assert ok
    path.write_bytes(data.tobytes()[: len(data) // 3])


def test_corrupt_jpeg_is_skipped_and_counted(
    tmp_path: Path, small_model: Path, write_images: WriteImages
) -> None:
    # 8 images, 6 drawn (3 batches of 2): the seeded draw's order (calibration.images) says
    # which one is read first and which one is never read at all.
    images = tmp_path / "images"
    write_images(images, 8)
    order = [p.name for p in list_images(images).images]
    _corrupt_jpeg(images / order[0])
    _corrupt_jpeg(images / order[-1])
    result = run_calibration(
        small_model, _options(tmp_path, held_back=0, write_qdq=False), tmp_path / "out"
    )
    # The first one drawn is skipped, counted and replaced by the next; the last is never
    # reached, so it is neither read nor reported.
    assert result.images == 6
    assert result.corrupt_images == (order[0],)


def test_too_many_corrupt_images_fail_with_the_names(
    tmp_path: Path, small_model: Path, write_images: WriteImages
) -> None:
    images = tmp_path / "images"
    write_images(images, 5)
    _corrupt_jpeg(images / "broken.jpg")
    with pytest.raises(UserError) as err:
        run_calibration(small_model, _options(tmp_path), tmp_path / "out")
    message = str(err.value)
    assert message.startswith(SENTENCE)
    assert f"only 5 of the 6 images in --cal_image_dir {images} could be used, 6 are needed" in (
        message
    )
    assert "1 were skipped as corrupt (broken.jpg: truncated JPEG" in message
    assert not (tmp_path / "cal.bin").exists() and not (tmp_path / "cal.tensorfile").exists()


def test_tensorfile_that_does_not_match_the_network_is_refused(
    tmp_path: Path, small_model: Path
) -> None:
    with TensorFileWriter(tmp_path / "cal.tensorfile") as writer:
        for _ in range(3):
            writer.write(np.zeros((2, 32, 48, 3), np.float32))
    with pytest.raises(UserError) as err:
        run_calibration(small_model, _options(tmp_path, image_dir=None), tmp_path / "out")
    assert "holds batches of shape (2, 32, 48, 3), but the network input is -d 64,96,3" in str(
        err.value
    )
    assert not (tmp_path / "cal.bin").exists()


def test_malformed_cache_is_refused(tmp_path: Path, small_model: Path) -> None:
    (tmp_path / "cal.bin").write_text("TRT-8601-EntropyCalibration2\ninput_1:0 = 0.5\n")
    with pytest.raises(UserError, match=r"line 2 is malformed.*delete it to calibrate again"):
        run_calibration(small_model, _options(tmp_path, image_dir=None), tmp_path / "out")


def test_cache_of_another_model_is_refused(tmp_path: Path, small_model: Path) -> None:
    cal_cache.write(
        tmp_path / "cal.bin", cal_cache.CalibrationCache.from_amax({"data_0": 1.0, "conv1": 2.0})
    )
    with pytest.raises(UserError, match=r"none of this model's tensors.*another model"):
        run_calibration(small_model, _options(tmp_path, image_dir=None), tmp_path / "out")


def test_no_calibration_data_at_all(tmp_path: Path, small_model: Path) -> None:
    with pytest.raises(UserError, match="needs calibration data: --cal_image_dir"):
        run_calibration(
            small_model, _options(tmp_path, image_dir=None, data_file=None), tmp_path / "out"
        )


def test_dims_that_do_not_match_the_model(tmp_path: Path, small_model: Path) -> None:
    with pytest.raises(
        UserError, match=r"input input_1:0 has shape \['N', 64, 96, 3\], but -d 320,448,3 was given"
    ):
        run_calibration(small_model, _options(tmp_path, input_hw=(320, 448)), tmp_path / "out")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"batches": 0}, "--batches must be at least 1"),
        ({"batch_size": 0}, "--batch_size must be at least 1"),
        ({"method": "kl"}, "'kl' is not one of entropy, minmax, percentile"),
        ({"percentile": 0.0}, "percentile must be in"),
    ],
)
def test_bad_options(
    tmp_path: Path, small_model: Path, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(UserError, match=message):
        run_calibration(small_model, _options(tmp_path, **overrides), tmp_path / "out")


def test_bpnet_calibrate_calibrates_an_exported_model_on_its_own(
    tmp_path: Path, small_model: Path, write_images: WriteImages
) -> None:
    """`bpnet calibrate --onnx MODEL.onnx -d H,W,3 --cal_image_dir ...` (the README's
    command): the export's calibration on a model already exported, published to -o."""
    import json

    from bodypose_exporter.cli.main import main

    images = tmp_path / "images"
    write_images(images, 8)
    out = tmp_path / "int8"
    code = main([
        "calibrate", "--onnx", str(small_model), "-d", f"{HEIGHT},{WIDTH},3",
        "--cal_image_dir", str(images), "--batches", "3", "--batch_size", "2",
        "--cal_cache_file", str(tmp_path / "cal.bin"), "-o", f"{out}/",
    ])  # fmt: skip
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    published = {a["kind"]: Path(a["path"]) for a in manifest["artifacts"]}
    assert {"calibration-cache", "qdq-model"} <= set(published), published
    assert all(path.is_file() and path.parent == out for path in published.values())
    cache = cal_cache.read(published["calibration-cache"])
    assert set(select_tensors(onnx.load(str(small_model))).names) <= set(cache.scales)
    assert manifest["calibration"]["images"] == 6
