"""INT8 calibration for the cal.bin route: Polygraphy's `Calibrator` fed from our tensorfile.

TensorRT's implicit-quantization flow (deprecated since TensorRT 10.1 in
favour of explicit Q/DQ, removed in 11; the strongly typed QDQ route is the
default, `builder`). Followed: Polygraphy `backend/trt/calibrator.py`
(`Calibrator(data_loader, cache, BaseClass)`: the device buffers, the cache
file read and written), TensorRT 10 Python API (`IInt8Calibrator` classes),
tao_deploy `nvidia_tao_deploy/engine/calibrator.py`.

Where Polygraphy falls short, and what we add:

- errors: TensorRT's Python wrapper swallows an exception raised in
  `get_batch`, and Polygraphy's `get_batch` turns its own errors into "no
  more data"; either way TensorRT goes on with a half-calibrated network.
  So the tensorfile is checked whole before the build (`check_tensorfile`:
  record shape, count, every record's length, that it matches the
  network's input), and `TensorfileFeed` records any error it meets and
  whether it was read to the end; the builder calls `raise_if_failed` after
  TensorRT returns and fails the build with the reason;
- a cache TensorRT ignores: with a cal.bin and no tensorfile the feed holds
  no data; if TensorRT asks for a batch, it did not accept the cache, and
  the build fails saying so instead of producing an uncalibrated engine;
- the calibrator class is the one the cache's header names
  (`calibration_cache.calibrator_for`), not always EntropyCalibrator2.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bodypose_exporter.calibration.tensorfile import (
    check_matches,
    check_records,
    inspect,
    read_batches,
)
from bodypose_exporter.errors import UserError

log = logging.getLogger(__name__)


class CalibrationFailedError(UserError):
    reason = "CalibrationFailed"


def check_tensorfile(
    path: Path, batches: int, batch_size: int, input_shape: tuple[int, int, int]
) -> None:
    """Refuse, before the build, a tensorfile that cannot feed this network's calibration."""
    height, width, channels = input_shape
    if channels != 3:
        raise UserError(f"the network input has {channels} channels; BodyPoseNet takes 3")
    info = inspect(path)
    check_matches(info, batches, batch_size, (height, width))
    check_records(path, batches, batch_size, (height, width))


@dataclass
class TensorfileFeed:
    """Polygraphy's data loader: `batches` records of `batch_size` images, as {input: array}.

    Iterating records the first error and whether every batch went out;
    TensorRT and Polygraphy both swallow what `get_batch` raises.
    """

    input_name: str
    input_shape: tuple[int, int, int]
    batch_size: int
    batches: int
    tensorfile: Path | None = None
    cache_source: str | None = None  # the cal.bin replayed, when there is no tensorfile
    fed: int = 0
    finished: bool = False
    error: str | None = None
    _started: bool = field(default=False, repr=False)

    def __iter__(self) -> Iterator[dict[str, npt.NDArray[np.float32]]]:
        self._started = True
        try:
            if self.tensorfile is None:
                raise CalibrationFailedError(
                    f"TensorRT asked for calibration data, so it did not accept the cache "
                    f"{self.cache_source} (its header or its tensor names do not match this "
                    "network); pass --cal_data_file to calibrate, or --int8_route qdq"
                )
            expected = (self.batch_size, *self.input_shape)
            for batch in read_batches(self.tensorfile, self.batches, self.batch_size):
                if batch.shape != expected:
                    raise CalibrationFailedError(
                        f"--cal_data_file {self.tensorfile}: batch {self.fed} has shape "
                        f"{batch.shape}, the network takes {expected}"
                    )
                self.fed += 1
                yield {self.input_name: batch}
            self.finished = True
        except Exception as exc:  # recorded: TensorRT would swallow it
            self.error = str(exc)
            log.error("calibration stopped: %s", exc)
            raise

    def raise_if_failed(self) -> None:
        """After the build: fail with the reason if calibration did not read every batch."""
        if self.error is not None:
            raise CalibrationFailedError(f"INT8 calibration failed: {self.error}")
        if self._started and not self.finished:
            raise CalibrationFailedError(
                f"INT8 calibration stopped after {self.fed} of {self.batches} batches (TensorRT "
                "or Polygraphy refused a batch; its log above says why): the engine would be "
                "half calibrated, so none is written"
            )


def make_calibrator(trt: Any, calibrator_class: str, feed: TensorfileFeed, cache: Path) -> Any:
    """Polygraphy's Calibrator over `feed`, of the TensorRT class the cache's header names.

    `cache` is read if it exists (TensorRT then asks for no data) and written
    by TensorRT after calibrating from the tensorfile.
    """
    from polygraphy.backend.trt import Calibrator  # lazy: needs TensorRT when called

    return Calibrator(feed, cache=str(cache), BaseClass=getattr(trt, calibrator_class))
