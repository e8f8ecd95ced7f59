"""Every bad input the exporter names: the message a user sees, and nothing left behind."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from tests.conftest import SAMPLE_KEY
from tests.exporter.conftest import RunCli, leftovers


@pytest.fixture
def model(sample_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the sample .tlt, in a directory the test owns."""
    dst = tmp_path / "bpnet_model.tlt"
    shutil.copy(sample_dir / "bpnet_sample.tlt", dst)
    return dst


def test_wrong_key(run_cli: RunCli, model: Path) -> None:
    r = run_cli("-m", str(model), "-k", "not-the-key", "-d", "224,320,3")
    assert r.code == 2
    assert "wrong key for" in r.err and "Check -k/--key" in r.err
    assert leftovers(model.parent) == []


def test_truncated_tlt(run_cli: RunCli, model: Path) -> None:
    data = model.read_bytes()
    model.write_bytes(data[: len(data) // 3])
    r = run_cli("-m", str(model), "-k", SAMPLE_KEY, "-d", "224,320,3")
    assert r.code == 2
    assert "is truncated or corrupted: the key is right" in r.err
    assert leftovers(model.parent) == []


def test_corrupted_tlt(run_cli: RunCli, model: Path) -> None:
    data = bytearray(model.read_bytes())
    # Damage the HDF5 metadata just after the signature (ciphertext offset 16 + 64): the
    # decrypted file is no HDF5 file HDF5 can open.
    for i in range(80, 2080):
        data[i] ^= 0xA5
    model.write_bytes(bytes(data))
    r = run_cli("-m", str(model), "-k", SAMPLE_KEY, "-d", "224,320,3")
    assert r.code == 2
    assert "is truncated or corrupted: the key is right but the decrypted model cannot be read" in (
        r.err
    )
    assert leftovers(model.parent) == []


def test_a_tlt_whose_keras_model_cannot_be_loaded(run_cli: RunCli, tmp_path: Path) -> None:
    # An HDF5 file HDF5 reads, holding a Keras model config Keras cannot load.
    import h5py

    from bodypose_exporter.codec.registry import codec_by_name
    from bodypose_exporter.codec.tao_files import write_tlt

    h5 = tmp_path / "model.h5"
    with h5py.File(h5, "w") as f:
        f.attrs["model_config"] = '{"class_name": "NoSuchModel", "config": {}}'
    model = tmp_path / "bpnet_model.tlt"
    write_tlt(h5, model, SAMPLE_KEY, codec_by_name("auto")[0])
    r = run_cli("-m", str(model), "-k", SAMPLE_KEY, "-d", "224,320,3")
    assert r.code == 2
    assert "decrypts with this key but is not a loadable Keras model" in r.err
    assert leftovers(model.parent) == []


def test_image_that_is_not_a_tao_model(run_cli: RunCli, sample_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "photo.tlt"
    shutil.copy(sample_dir / "images" / "sample_0000.jpg", path)
    r = run_cli("-m", str(path), "-k", SAMPLE_KEY, "-d", "224,320,3")
    assert r.code == 2
    assert "is not a TAO .tlt model: it is an image (JPEG), not an encrypted model" in r.err


def test_text_file_that_is_not_a_tao_model(run_cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "spec.tlt"
    path.write_text("model:\n  stages: 3\n" * 200)
    r = run_cli("-m", str(path), "-k", SAMPLE_KEY, "-d", "224,320,3")
    assert r.code == 2
    assert "is not a TAO .tlt model: it looks like a text file" in r.err


@pytest.mark.parametrize("dims", ["250,448,3", "320,452,3"])
def test_height_or_width_not_multiple_of_8(run_cli: RunCli, model: Path, dims: str) -> None:
    r = run_cli("-m", str(model), "-k", SAMPLE_KEY, "-d", dims)
    assert r.code == 2
    assert "must be a positive multiple of 8" in r.err
    assert "multiples of 16, 32 or 64 are better" in r.err


def test_channels_other_than_3(run_cli: RunCli, model: Path) -> None:
    r = run_cli("-m", str(model), "-k", SAMPLE_KEY, "-d", "320,448,1")
    assert r.code == 2
    assert "channels must be 3" in r.err


def test_malformed_dims(run_cli: RunCli, model: Path) -> None:
    r = run_cli("-m", str(model), "-k", SAMPLE_KEY, "-d", "320x448")
    assert r.code == 2
    assert "give three comma-separated integers" in r.err


def test_missing_model_path(run_cli: RunCli, tmp_path: Path) -> None:
    r = run_cli("-m", str(tmp_path / "nope.tlt"), "-k", SAMPLE_KEY, "-d", "224,320,3")
    assert r.code == 2
    assert f"model {tmp_path / 'nope.tlt'} does not exist" in r.err
    assert leftovers(tmp_path) == []


def test_output_directory_that_cannot_be_written(run_cli: RunCli, model: Path) -> None:
    blocker = model.parent / "not-a-dir"
    blocker.write_text("a file where the output directory should be")
    out = blocker / "sub" / "model.etlt"
    r = run_cli("-m", str(model), "-k", SAMPLE_KEY, "-d", "224,320,3", "-o", str(out))
    assert r.code == 2
    assert f"cannot write -o/--output_file {out}: {blocker} is a file, not a directory" in r.err


def test_unknown_data_type(run_cli: RunCli, model: Path) -> None:
    r = run_cli("-m", str(model), "-k", SAMPLE_KEY, "--data_type", "int4")
    assert r.code == 2
    assert "argument --data_type: invalid choice: 'int4'" in r.err
    assert "fp32" in r.err and "int8" in r.err


def test_uff_backend_is_refused(run_cli: RunCli, model: Path) -> None:
    # TAO's parser offers uff; no TensorRT this exporter builds for reads UFF any more.
    r = run_cli("-m", str(model), "-k", SAMPLE_KEY, "-t", "uff")
    assert r.code == 2
    assert "-t/--backend uff: BodyPoseNet export supports only ONNX (-t tfonnx" in r.err


def test_channels_first_is_refused(run_cli: RunCli, model: Path) -> None:
    r = run_cli("-m", str(model), "-k", SAMPLE_KEY, "--data_format", "channels_first")
    assert r.code == 2
    assert "channels_first is not supported" in r.err


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (
            ["--data_type", "int8"],
            "--data_type int8 needs calibration data: --cal_image_dir, an existing "
            "--cal_data_file, or an existing --cal_cache_file",
        ),
        # This tool's own engine flags; TAO's (--max_batch_size, -s, ...) are taken (below).
        (
            ["--engine_backend", "onnxruntime", "--max_batch_size", "8"],
            "--engine_backend: only used when building an engine; add --engine_file",
        ),
        (["--min_cosine", "0.9"], "--min_cosine: only used when building an engine"),
    ],
)
def test_flags_that_would_do_nothing_fail_loudly(
    run_cli: RunCli, model: Path, flags: list[str], named: str
) -> None:
    r = run_cli("-m", str(model), "-k", SAMPLE_KEY, "-d", "224,320,3", *flags)
    assert r.code == 2
    assert named in r.err
    assert leftovers(model.parent) == []


def test_tao_flags_that_do_nothing_here_are_taken_and_logged(
    run_cli: RunCli, model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """TAO's parser takes these with fp32 and no --engine_file; so does bpnet-export, one log
    line each (they were refused: "only used with --data_type int8", "only used when
    building an engine")."""
    caplog.set_level(logging.INFO)
    imgs = model.parent / "imgs"
    imgs.mkdir()
    r = run_cli(
        "-m", str(model), "-k", SAMPLE_KEY, "-d", "224,320,3", "-t", "onnx",
        "--max_batch_size", "8", "-s", "--cal_image_dir", str(imgs), "--batches", "4",
        "--batch_size", "2", "--static_batch_size", "1", "--opt_batch_size", "2",
    )  # fmt: skip
    assert r.code == 0, r.err
    said = caplog.text
    for line in (
        "-t/--backend onnx: converted with tf2onnx as for -t tfonnx",
        "--max_batch_size 8: not used: no engine is built without --engine_file",
        "-s/--strict_type_constraints: not used: no engine is built without --engine_file",
        f"--cal_image_dir {imgs}: not used: only INT8 calibration reads it, and this run is fp32",
        "--batches 4: not used: only INT8 calibration reads it, and this run is fp32",
        "--batch_size 2: not used: only INT8 calibration reads it, and this run is fp32",
        "--static_batch_size 1: not used: the exported ONNX model keeps a dynamic batch",
        "--opt_batch_size 2: not used: TAO sets its engine profile's optimum batch with it",
    ):
        assert said.count(line) == 1, line
    assert (model.parent / "bpnet_model.etlt").is_file()


def test_help_teaches(run_cli: RunCli) -> None:
    r = run_cli("--help")
    assert r.code == 0
    for text in ("--sdk_compatible_model", "s3://", "manifest.json", "Exit codes"):
        assert text in r.out
