"""cal.bin's header and the calibrator that reads it; another TensorRT version re-stamped.

TensorRT silently ignores a cache whose header names another algorithm than
its calibrator's, or another version (NVIDIA/TensorRT issue 1378). Each
calibrator gets the header it expects, the build replays a cache through the
class its header names, and a version change is re-stamped with a note or
the cache refused with the reason.
"""

from __future__ import annotations

import pytest

from bodypose_exporter.calibration.calibration_cache import (
    CALIBRATORS,
    CalibrationCache,
    calibrator_for,
    check_names,
    parse,
    restamp,
    retag,
    version_text,
)
from bodypose_exporter.errors import UserError

TEXT = "TRT-8601-MinMaxCalibration\ninput_1:0: 3c010a14\nconv1/Relu:0: 3d0c4a0e\n"


@pytest.mark.parametrize(
    ("calibrator", "header"),
    [
        ("IInt8EntropyCalibrator2", "TRT-100800-EntropyCalibration2"),
        ("IInt8EntropyCalibrator", "TRT-100800-EntropyCalibration"),
        ("IInt8MinMaxCalibrator", "TRT-100800-MinMaxCalibration"),
        ("IInt8LegacyCalibrator", "TRT-100800-LegacyCalibration"),
    ],
)
def test_each_calibrator_gets_the_header_it_reads(calibrator: str, header: str) -> None:
    stamped = retag(TEXT.encode(), "10.8.0", calibrator).decode()
    assert stamped.splitlines()[0] == header
    assert stamped.splitlines()[1:] == TEXT.splitlines()[1:]  # the scales untouched
    assert calibrator_for(parse(stamped)) == calibrator


def test_without_a_chosen_calibrator_the_header_keeps_its_algorithm_and_names_the_class() -> None:
    stamped = parse(retag(TEXT.encode(), "10.8.0").decode())
    assert stamped.header == "TRT-100800-MinMaxCalibration"
    # the build then replays it through IInt8MinMaxCalibrator, not EntropyCalibrator2
    assert calibrator_for(stamped) == "IInt8MinMaxCalibrator"
    assert set(CALIBRATORS.values()) == {
        "IInt8EntropyCalibrator2",
        "IInt8EntropyCalibrator",
        "IInt8MinMaxCalibrator",
        "IInt8LegacyCalibrator",
    }


def test_an_unknown_algorithm_is_refused_with_the_known_ones() -> None:
    cache = parse("TRT-8601-Percentile99\ninput_1:0: 3c010a14\n")
    with pytest.raises(UserError) as raised:
        calibrator_for(cache, "s3://b/cal.bin")
    assert str(raised.value) == (
        "--cal_cache_file s3://b/cal.bin: header 'TRT-8601-Percentile99' names the calibration "
        "algorithm 'Percentile99', which no TensorRT calibrator writes (known: "
        "EntropyCalibration2, EntropyCalibration, MinMaxCalibration, LegacyCalibration); delete "
        "it to calibrate again"
    )


def test_version_numbers_as_text() -> None:
    assert version_text(8601) == "8.6.1"
    assert version_text(100800) == "10.8.0"
    assert version_text(100300) == "10.3.0"


def test_another_tensorrt_version_is_restamped_and_says_so() -> None:
    restamped = restamp(parse(TEXT), "10.8.0.43", "cal.bin")
    assert restamped.cache.header == "TRT-100800-MinMaxCalibration"
    assert restamped.calibrator == "IInt8MinMaxCalibrator"
    assert restamped.note == (
        "cal.bin: header TRT-8601-MinMaxCalibration names TensorRT 8.6.1, this build runs "
        "TensorRT 10.8.0.43; re-stamped TRT-100800-MinMaxCalibration (its scales are keyed by "
        "ONNX tensor names, which do not depend on the TensorRT version)"
    )
    assert restamped.as_dict()["headerBefore"] == "TRT-8601-MinMaxCalibration"
    same = restamp(restamped.cache, "10.8.0.43")
    assert same.note is None and same.cache == restamped.cache


def test_a_cache_of_another_model_is_refused_with_the_reason() -> None:
    cache = CalibrationCache(
        scales={"input_1": 0.01, "conv1/convolution": 0.02, "conv1/Relu": 0.03}, version=7103
    )
    with pytest.raises(UserError) as raised:
        check_names(cache, {"input_1:0", "conv1/Relu:0"}, "input_1:0", "cal.bin")
    assert str(raised.value) == (
        "--cal_cache_file cal.bin (header TRT-7103-EntropyCalibration2, TensorRT 7.1.3) is not "
        "this model's: 0 of its 3 tensor names are in the ONNX model (e.g. 'input_1' is not) and "
        "the network input 'input_1:0' has no scale; it was written for another model or by a "
        "TensorRT with other tensor names. Delete it to calibrate again, or pass the model's own "
        "cal.bin"
    )
    check_names(parse(TEXT), {"input_1:0", "conv1/Relu:0"}, "input_1:0")  # this model's: fine
