"""cal.bin: TensorRT's calibration-cache text format, round trip and bad files."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from bodypose_exporter.calibration import calibration_cache
from bodypose_exporter.calibration.calibration_cache import (
    CalibrationCache,
    hex_to_scale,
    scale_to_hex,
    trt_version_number,
)
from bodypose_exporter.errors import UserError


def test_scale_is_the_hex_of_the_float32_bits() -> None:
    # amax 0.5 (the normalized image input) -> scale 0.5 / 127, as TensorRT writes it.
    assert scale_to_hex(0.5 / 127) == "3b810204"
    assert scale_to_hex(1.0) == "3f800000"
    assert scale_to_hex(0.0) == "0"  # TensorRT writes a zero scale as "0"
    assert hex_to_scale("3f800000") == 1.0
    value = struct.unpack(">f", struct.pack(">f", 0.0123))[0]
    assert hex_to_scale(scale_to_hex(value)) == value


@pytest.mark.parametrize(
    ("version", "number"),
    [("8.6.1", 8601), ("8.6.1.6", 8601), ("8.4", 8400), ("10.3.0", 100300), ("10.14.1", 101401)],
)
def test_header_version_numbers(version: str, number: int) -> None:
    assert trt_version_number(version) == number


def test_round_trip_keeps_names_order_and_exact_scales(tmp_path: Path) -> None:
    amax = {"input_1:0": 0.5, "bpnet/block_1a_relu/Relu:0": 3.14159, "paf_out/BiasAdd:0": 0.0}
    cache = CalibrationCache.from_amax(amax, trt_version="8.6.1")
    path = tmp_path / "cal.bin"
    calibration_cache.write(path, cache)
    text = path.read_text()
    assert text.splitlines()[0] == "TRT-8601-EntropyCalibration2"
    assert text.splitlines()[1] == "input_1:0: 3b810204"
    again = calibration_cache.read(path)
    assert again == cache
    assert list(again.scales) == list(amax)
    assert again.amax()["bpnet/block_1a_relu/Relu:0"] == pytest.approx(3.14159, rel=1e-6)


def test_reads_a_cache_as_tensorrt_writes_it(tmp_path: Path) -> None:
    path = tmp_path / "cal.bin"
    path.write_text(
        "TRT-8401-EntropyCalibration2\ninput: 3caa54fc\n371: 3caa54fc\n"
        "(Unnamed Layer* 64) [Shuffle]_output: 0\n"
    )
    cache = calibration_cache.read(path)
    assert cache.version == 8401 and cache.algorithm == "EntropyCalibration2"
    assert cache.scales["(Unnamed Layer* 64) [Shuffle]_output"] == 0.0
    assert cache.scales["input"] == pytest.approx(0.020792, rel=1e-4)


def test_retag_stamps_the_building_tensorrt_version() -> None:
    cache = CalibrationCache.from_amax({"x:0": 1.0}, trt_version="10.3.0")
    stamped = calibration_cache.retag(cache.to_text().encode(), "10.8.0.43")
    assert stamped.decode().splitlines() == ["TRT-100800-EntropyCalibration2", "x:0: 3c010204"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"\n\n", "is empty"),
        (b"input_1:0: 3b810204\n", "not a TensorRT calibration cache: line 1"),
        (b"TRT-8601-EntropyCalibration2\n", "has a header but no tensor scales"),
        (b"TRT-8601-EntropyCalibration2\ninput_1:0 3b810204\n", "line 2 is malformed"),
        (b"TRT-8601-EntropyCalibration2\ninput_1:0: 0.0039\n", "line 2 is malformed"),
        (b"TRT-8601-EntropyCalibration2\nx: 3b810204\nx: 3b810204\n", "line 3: x appears twice"),
        (b"TRT-8601-EntropyCalibration2\nx: 7fc00000\n", "not a finite non-negative"),
        (b"TRT-8601-EntropyCalibration2\nx: bf800000\n", "not a finite non-negative"),
        (b"\x89PNG\r\n\x1a\n\x00\x00binary", "not a text TensorRT calibration cache"),
    ],
)
def test_malformed_cache_is_refused_with_the_reason(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "cal.bin"
    path.write_bytes(content)
    with pytest.raises(UserError) as err:
        calibration_cache.read(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_unreadable_cache(tmp_path: Path) -> None:
    (tmp_path / "cal.bin").mkdir()  # exists, cannot be read as a file (even by root)
    with pytest.raises(UserError, match=r"--cal_cache_file .*cal.bin cannot be read"):
        calibration_cache.read(tmp_path / "cal.bin")
