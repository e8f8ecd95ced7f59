"""`cal.bin`: TensorRT's INT8 calibration cache, text format, written and read.

The format, as TensorRT's calibrators write it and TAO writes it for QAT
models (NVIDIA/tao_tensorflow1_backend
`nvidia_tao_tf1/cv/core/export/base_exporter.py`,
`_calibration_cache_from_dict`), and as ONNX Runtime's TensorRT execution
provider parses it (microsoft/onnxruntime
`onnxruntime/core/providers/tensorrt/tensorrt_execution_provider_utils.h`,
`ReadDynamicRange`: "tensor name : scale in 32-bit single precision IEEE754
format"):

    TRT-<version>-EntropyCalibration2
    input_1:0: 3c010a14
    bpnet_deploy/block_1a_relu/Relu:0: 3d0c4a0e
    ...

- the header names the TensorRT version as an integer (8.6.1 -> 8601; from
  TensorRT 10 on, major * 10000 + minor * 100 + patch: 10.3.0 -> 100300) and
  the calibrator's algorithm;
- then one line per tensor: the ONNX value name, ": ", and the float32 scale
  (amax / 127) as the hexadecimal of its IEEE-754 bits, big-endian digit
  order, lower case, without leading zeros (a zero scale is written "0").

TensorRT ignores a cache whose header does not match its own version and
the algorithm of the calibrator reading it, silently, and then tries to
calibrate itself (NVIDIA/TensorRT issue 1378; NVIDIA/Deep-Learning-
Accelerator-SW issue 26 shows a TRT-8600 cache failing under TensorRT 10.3).
So the header's two parts are handled apart:

- the algorithm names the calibrator class that wrote the cache
  (`CALIBRATORS`: the algorithm names TensorRT's calibrators write, one per
  `IInt8*Calibrator*` class of the TensorRT Python API); the build stage
  replays a cache through the class its header names (`calibrator_for`), and
  `retag` can write the header of another class when a caller chooses one;
- the version: the export stage has no TensorRT, so it writes the version it
  is told (or a TensorRT 10 default); the build stage, which has TensorRT,
  re-stamps its own version (`restamp`), and says so: the scales are keyed by
  ONNX tensor names, which no TensorRT version changes. A cache whose names
  are not the model's (written for another model, or by TensorRT 7's UFF
  names) is refused with that reason (`check_names`), never dropped.

We write EntropyCalibration2 whatever method chose the ranges, as TAO does
for QAT scales.
"""

from __future__ import annotations

import math
import os
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bodypose_exporter.errors import UserError

ALGORITHM = "EntropyCalibration2"
#: Used when no TensorRT is importable (the export stage); see `retag`.
DEFAULT_TRT_VERSION = "10.3.0"
INT8_MAX = 127.0
_HEADER = re.compile(r"^TRT-(\d+)-([A-Za-z0-9]+)$")
_HEX = re.compile(r"^[0-9a-fA-F]{1,8}$")


def trt_version_number(version: str) -> int:
    """`tensorrt.__version__` ("8.6.1.6", "10.3.0") -> the header's integer (8601, 100300)."""
    parts = version.split(".")
    try:
        major, minor, patch = (int(p) for p in [*parts, "0", "0"][:3])
    except ValueError as exc:
        raise ValueError(f"not a TensorRT version: {version!r}") from exc
    return major * (10000 if major >= 10 else 1000) + minor * 100 + patch


def version_text(number: int) -> str:
    """The header's integer as a version: 8601 -> "8.6.1", 100800 -> "10.8.0"."""
    if number >= 100000:
        return f"{number // 10000}.{(number // 100) % 100}.{number % 100}"
    return f"{number // 1000}.{(number // 100) % 10}.{number % 100}"


#: The header's algorithm -> the TensorRT calibrator class that reads (and writes) it.
CALIBRATORS = {
    "EntropyCalibration2": "IInt8EntropyCalibrator2",
    "EntropyCalibration": "IInt8EntropyCalibrator",
    "MinMaxCalibration": "IInt8MinMaxCalibrator",
    "LegacyCalibration": "IInt8LegacyCalibrator",
}
ALGORITHMS = {calibrator: algorithm for algorithm, calibrator in CALIBRATORS.items()}


def installed_trt_version() -> str | None:
    try:
        import tensorrt  # type: ignore[import-not-found]  # only inside NVIDIA's containers
    except ImportError:
        return None
    return str(tensorrt.__version__)


def as_float32(value: float) -> float:
    """The value the file can hold: scales are float32, so the cache equals what is written."""
    return float(struct.unpack(">f", struct.pack(">f", value))[0])


def scale_to_hex(scale: float) -> str:
    return format(struct.unpack(">I", struct.pack(">f", scale))[0], "x")


def hex_to_scale(text: str) -> float:
    return float(struct.unpack(">f", struct.pack(">I", int(text, 16)))[0])


@dataclass(frozen=True)
class CalibrationCache:
    """Per-tensor scales (amax / 127), in the order they are written."""

    scales: dict[str, float]
    version: int = field(default_factory=lambda: trt_version_number(DEFAULT_TRT_VERSION))
    algorithm: str = ALGORITHM

    @classmethod
    def from_amax(
        cls, amax: Mapping[str, float], trt_version: str | None = None
    ) -> CalibrationCache:
        version = trt_version or installed_trt_version() or DEFAULT_TRT_VERSION
        return cls(
            scales={name: as_float32(value / INT8_MAX) for name, value in amax.items()},
            version=trt_version_number(version),
        )

    @property
    def header(self) -> str:
        return f"TRT-{self.version}-{self.algorithm}"

    def amax(self) -> dict[str, float]:
        return {name: scale * INT8_MAX for name, scale in self.scales.items()}

    def to_text(self) -> str:
        lines = [self.header]
        lines += [f"{name}: {scale_to_hex(scale)}" for name, scale in self.scales.items()]
        return "\n".join(lines) + "\n"


def parse(text: str, source: str = "cal.bin") -> CalibrationCache:
    """Parse cache text; UserError naming the line if it is not a calibration cache."""
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise UserError(f"--cal_cache_file {source} is empty: delete it to calibrate again")
    header = _HEADER.match(lines[0].strip())
    if header is None:
        raise UserError(
            f"--cal_cache_file {source} is not a TensorRT calibration cache: line 1 is "
            f"{lines[0][:80]!r}, expected a header like 'TRT-8601-EntropyCalibration2'; "
            "delete it to calibrate again"
        )
    scales: dict[str, float] = {}
    for number, line in enumerate(lines[1:], start=2):
        name, sep, value = line.rpartition(": ")
        value = value.strip()
        if not sep or not name or not _HEX.match(value):
            raise UserError(
                f"--cal_cache_file {source} line {number} is malformed: {line[:120]!r} "
                "(expected 'tensor_name: <hex of the float32 scale>'); delete it to calibrate "
                "again"
            )
        scale = hex_to_scale(value)
        if not math.isfinite(scale) or scale < 0:
            raise UserError(
                f"--cal_cache_file {source} line {number}: scale {value} of {name} is "
                f"{scale}, not a finite non-negative number"
            )
        if name in scales:
            raise UserError(f"--cal_cache_file {source} line {number}: {name} appears twice")
        scales[name] = scale
    if not scales:
        raise UserError(f"--cal_cache_file {source} has a header but no tensor scales")
    return CalibrationCache(scales=scales, version=int(header.group(1)), algorithm=header.group(2))


def read(path: Path) -> CalibrationCache:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"--cal_cache_file {path} cannot be read: {exc.strerror or exc}") from exc
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise UserError(
            f"--cal_cache_file {path} is not a text TensorRT calibration cache (byte "
            f"{exc.start} is not ASCII); delete it to calibrate again"
        ) from exc
    return parse(text, str(path))


def write(path: Path, cache: CalibrationCache) -> None:
    """Write atomically: a reader never sees half a cache (a partial one would be 'reused')."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(cache.to_text(), encoding="ascii")
    os.replace(partial, path)


def calibrator_for(cache: CalibrationCache, source: str = "cal.bin") -> str:
    """The TensorRT calibrator class that replays `cache`: the one its header names."""
    try:
        return CALIBRATORS[cache.algorithm]
    except KeyError:
        raise UserError(
            f"--cal_cache_file {source}: header {cache.header!r} names the calibration "
            f"algorithm {cache.algorithm!r}, which no TensorRT calibrator writes (known: "
            f"{', '.join(CALIBRATORS)}); delete it to calibrate again"
        ) from None


def retag(data: bytes, trt_version: str, calibrator: str | None = None) -> bytes:
    """The same cache with the header `trt_version` and `calibrator` (default: its own) read.

    `calibrator` is a TensorRT class name (`IInt8EntropyCalibrator2`, ...): the
    header then names that class's algorithm, so TensorRT does not ignore it.
    """
    cache = parse(data.decode("ascii"), "calibration cache")
    if calibrator is not None and calibrator not in ALGORITHMS:
        raise ValueError(f"{calibrator!r} is not a TensorRT calibrator ({', '.join(ALGORITHMS)})")
    stamped = CalibrationCache(
        scales=cache.scales,
        version=trt_version_number(trt_version),
        algorithm=ALGORITHMS[calibrator] if calibrator else cache.algorithm,
    )
    return stamped.to_text().encode("ascii")


@dataclass(frozen=True)
class Restamped:
    """A cache ready for this TensorRT, and what was changed to make it so."""

    cache: CalibrationCache
    calibrator: str
    header_before: str
    note: str | None  # None: the header already named this TensorRT

    def as_dict(self) -> dict[str, str | None]:
        return {
            "headerBefore": self.header_before,
            "header": self.cache.header,
            "calibrator": self.calibrator,
            "restamped": self.note,
        }


def restamp(cache: CalibrationCache, trt_version: str, source: str = "cal.bin") -> Restamped:
    """`cache` with this TensorRT's version in its header, and the calibrator that reads it.

    Never silent: a changed version comes back with a note saying from which
    version to which and why the scales still hold.
    """
    calibrator = calibrator_for(cache, source)
    number = trt_version_number(trt_version)
    if cache.version == number:
        return Restamped(cache, calibrator, cache.header, None)
    stamped = CalibrationCache(scales=cache.scales, version=number, algorithm=cache.algorithm)
    note = (
        f"{source}: header {cache.header} names TensorRT {version_text(cache.version)}, this "
        f"build runs TensorRT {trt_version}; re-stamped {stamped.header} (its scales are keyed "
        "by ONNX tensor names, which do not depend on the TensorRT version)"
    )
    return Restamped(stamped, calibrator, cache.header, note)


def check_names(
    cache: CalibrationCache, model_tensors: set[str], input_name: str, source: str = "cal.bin"
) -> None:
    """Refuse a cache that is not this model's: TensorRT would use none of it, silently.

    A cache names tensors of the model it was calibrated on; without a scale
    for the network input, or when most of its names are not the model's, it
    was written for another model (or by a TensorRT that named tensors after
    UFF nodes) and TensorRT would calibrate nothing from it.
    """
    known = [name for name in cache.scales if name in model_tensors]
    if input_name in cache.scales and len(known) * 2 >= len(cache.scales):
        return
    stranger = next((name for name in cache.scales if name not in model_tensors), "")
    raise UserError(
        f"--cal_cache_file {source} (header {cache.header}, TensorRT "
        f"{version_text(cache.version)}) is not this model's: {len(known)} of its "
        f"{len(cache.scales)} tensor names are in the ONNX model"
        + (f" (e.g. {stranger!r} is not)" if stranger else "")
        + (
            f" and the network input {input_name!r} has no scale"
            if input_name not in cache.scales
            else ""
        )
        + "; it was written for another model or by a TensorRT with other tensor names. Delete "
        "it to calibrate again, or pass the model's own cal.bin"
    )
