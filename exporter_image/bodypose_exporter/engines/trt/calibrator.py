"""The INT8 calibrator: TensorRT's IInt8EntropyCalibrator2 over our cal.bin, or the tensorfile.

TensorRT's implicit-quantization flow (deprecated since TensorRT 10.1 in
favour of explicit Q/DQ, still supported in 10.x; NVIDIA/TensorRT
`tools/Polygraphy/polygraphy/backend/trt/calibrator.py` and
`samples/python/efficientdet/build_engine.py`, tao_deploy
`nvidia_tao_deploy/engine/calibrator.py`):

- `read_calibration_cache` returns our cal.bin, re-stamped with this
  TensorRT's version in its header (a cache whose header names another
  version is ignored and TensorRT would calibrate instead:
  `calibration.calibration_cache.retag`); TensorRT then never asks for data;
- with no cache but a tensorfile, `get_batch` feeds its batches (TAO's
  TensorFile layout, `calibration.tensorfile`) through one device buffer and
  returns None when they run out; `write_calibration_cache` then stores what
  TensorRT computed at the cache path, so the next build replays it.

The base class must be initialised explicitly, or pybind11's trampoline
crashes (TensorRT API docs, IInt8Calibrator).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bodypose_exporter.calibration.calibration_cache import retag
from bodypose_exporter.calibration.tensorfile import read_batches
from bodypose_exporter.engines.trt.device import DeviceBuffer, create_stream, destroy_stream
from bodypose_exporter.errors import UserError

log = logging.getLogger(__name__)


def cache_bytes_for(trt_version: str, path: Path) -> bytes:
    """cal.bin with this TensorRT's version in its header, checked on the way."""
    try:
        return retag(path.read_bytes(), trt_version)
    except UnicodeDecodeError as exc:
        raise UserError(
            f"--cal_cache_file {path} is not a text TensorRT calibration cache"
        ) from exc


def make_calibrator(
    trt: Any,
    cache_path: Path | None,
    tensorfile: Path | None,
    batches: int,
    batch_size: int,
    input_shape: tuple[int, int, int],
) -> Any:
    """An IInt8EntropyCalibrator2 instance (the class needs the imported `tensorrt` module)."""

    class Calibrator(trt.IInt8EntropyCalibrator2):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.replayed = False
            self.batches_fed = 0
            self._cache: bytes | None = None
            if cache_path is not None and cache_path.exists():
                self._cache = cache_bytes_for(trt.__version__, cache_path)
            self._batches: Iterator[npt.NDArray[np.float32]] | None = None
            self._buffer: DeviceBuffer | None = None
            self._stream: Any = None

        def get_batch_size(self) -> int:
            return batch_size

        def get_batch(self, names: list[str]) -> list[int] | None:
            if tensorfile is None:
                log.error("TensorRT asked for calibration data, but only a cache was given")
                return None
            if self._batches is None:
                self._batches = read_batches(tensorfile, batches, batch_size)
                nbytes = batch_size * int(np.prod(input_shape)) * 4
                self._buffer, self._stream = DeviceBuffer(nbytes), create_stream()
            assert self._buffer is not None
            batch = next(self._batches, None)
            if batch is None:
                self.release()
                return None
            self._buffer.upload(batch, self._stream)
            self.batches_fed += 1
            return [self._buffer.ptr]

        def read_calibration_cache(self) -> bytes | None:
            if self._cache is not None:
                self.replayed = True
            return self._cache

        def write_calibration_cache(self, cache: Any) -> None:
            data = bytes(cache)
            if cache_path is not None and not self.replayed:
                cache_path.parent.mkdir(parents=True, exist_ok=True)
                cache_path.write_bytes(data)
                log.info(
                    "TensorRT calibrated on %d batches; cache written to %s",
                    self.batches_fed,
                    cache_path,
                )

        def release(self) -> None:
            if self._buffer is not None:
                self._buffer.free()
                self._buffer = None
            if self._stream is not None:
                destroy_stream(self._stream)
                self._stream = None

    return Calibrator()
