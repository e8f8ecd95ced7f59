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
algorithm and then tries to calibrate itself (NVIDIA/TensorRT issue 1378;
NVIDIA/Deep-Learning-Accelerator-SW issue 26 shows a TRT-8600 cache failing
under TensorRT 10.3). The export stage has no TensorRT, so it writes the
version it is told (or a TensorRT 10 default) and the build stage, which has
TensorRT, stamps its own version with `retag` before handing the bytes over.
The algorithm is always EntropyCalibration2, whatever method chose the
ranges, as TAO does for QAT scales: the build stage replays the cache through
an `IInt8EntropyCalibrator2`.
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


def retag(data: bytes, trt_version: str) -> bytes:
    """The same cache with the header of `trt_version` (for the build stage, before TensorRT)."""
    cache = parse(data.decode("ascii"), "calibration cache")
    stamped = CalibrationCache(
        scales=cache.scales, version=trt_version_number(trt_version), algorithm=cache.algorithm
    )
    return stamped.to_text().encode("ascii")
