"""The calibration tensorfile (`--cal_data_file`), in TAO's own TensorFile layout.

TAO defines the format in NVIDIA/tao_tensorflow1_backend
`nvidia_tao_tf1/cv/common/export/tensorfile.py` (`TensorFile`, the same class
as `nvidia_tao_tf1/core/export/data.py`) and reads it in
`cv/common/export/tensorfile_calibrator.py` (`TensorfileCalibrator`); tao_deploy
keeps a copy in `nvidia_tao_deploy/engine/tensorfile.py`. It is HDF5:

- root attribute `count`: the number of records (batches);
- root attribute `shape`: the shape every record has (written on the first
  record, because TAO opens with `enforce_same_shape=True`);
- record i is the group `_tensorfile_array_key__<i>` (prefix
  `_tensorfile_array_key_`, then `_<i>`) holding one dataset named
  `_tensorfile_array_key_`: one batch, (batch_size, H, W, C) for channels_last.

We write exactly that layout, so TAO's TensorfileCalibrator reads our files
and we read TAO's. Two choices differ from TAO's writer and are invisible to
its reader: batches are stored as float32 (TAO's `prepare_chunk` builds
float64 and the calibrator casts to float32 anyway), and without gzip
(gzip of float images costs more CPU than a forward pass leaves spare and
saves little; h5py reads either). A file is written under a temporary name
and renamed when complete, so an interrupted run never leaves a truncated
tensorfile that a later run would mistake for a finished one.

TAO's calibrator, given records larger than the batch size, uses the first
batch_size entries of each and refuses smaller ones; we do the same.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import h5py
import numpy as np
import numpy.typing as npt

from bodypose_exporter.errors import UserError

ARRAY_KEY = "_tensorfile_array_key_"


def record_name(index: int) -> str:
    """TAO's `TensorFile._get_group_name`: `GROUP_NAME_PREFIX` + `_<index>`."""
    return f"{ARRAY_KEY}_{index}"


@dataclass(frozen=True)
class TensorFileInfo:
    path: Path
    count: int
    record_shape: tuple[int, ...]


class TensorFileWriter:
    """Append batches to a new tensorfile; it appears at `path` only on a clean close."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._partial = path.with_name(f".{path.name}.partial")
        self._db: h5py.File | None = None
        self.count = 0
        self.shape: tuple[int, ...] | None = None

    def __enter__(self) -> TensorFileWriter:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = h5py.File(self._partial, "w")
        except OSError as exc:
            raise UserError(f"--cal_data_file {self.path} cannot be written: {exc}") from exc
        self._db.attrs["count"] = 0
        return self

    def write(self, batch: npt.NDArray[np.float32]) -> None:
        assert self._db is not None, "use TensorFileWriter as a context manager"
        if self.shape is None:
            self.shape = tuple(batch.shape)
            self._db.attrs["shape"] = np.asarray(batch.shape, dtype=np.int64)
        elif tuple(batch.shape) != self.shape:
            raise ValueError(f"Shape mismatch: {self.shape} v.s. {tuple(batch.shape)}")
        group = self._db.create_group(record_name(self.count))
        group.create_dataset(ARRAY_KEY, data=np.ascontiguousarray(batch, dtype=np.float32))
        self.count += 1
        self._db.attrs["count"] = self.count

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._db is not None:
            self._db.close()
        if exc_type is None:
            os.replace(self._partial, self.path)
        else:
            self._partial.unlink(missing_ok=True)


def inspect(path: Path) -> TensorFileInfo:
    """Count and record shape of an existing tensorfile; UserError if it is not one."""
    try:
        with h5py.File(path, "r") as db:
            if "count" not in db.attrs:
                raise UserError(
                    f"--cal_data_file {path} is an HDF5 file but not a TAO tensorfile "
                    "(no 'count' attribute)"
                )
            count = int(db.attrs["count"])
            if count < 1 or record_name(0) not in db:
                raise UserError(f"--cal_data_file {path} holds no batches")
            if "shape" in db.attrs:
                shape = tuple(int(v) for v in np.asarray(db.attrs["shape"]).ravel())
            else:  # written with enforce_same_shape=False: trust the first record
                shape = tuple(int(v) for v in _dataset(db, 0, path).shape)
    except OSError as exc:
        raise UserError(
            f"--cal_data_file {path} cannot be read as a tensorfile (HDF5): {exc}"
        ) from exc
    return TensorFileInfo(path=path, count=count, record_shape=shape)


def _dataset(db: h5py.File, index: int, path: Path) -> h5py.Dataset:
    name = record_name(index)
    if name not in db:
        raise UserError(f"--cal_data_file {path}: batch {index} is missing")
    group = db[name]
    if not isinstance(group, h5py.Group) or ARRAY_KEY not in group:
        raise UserError(f"--cal_data_file {path}: record {name} is not a single array")
    dataset = group[ARRAY_KEY]
    assert isinstance(dataset, h5py.Dataset)
    return dataset


def check_matches(
    info: TensorFileInfo, batches: int, batch_size: int, input_hw: tuple[int, int]
) -> None:
    """Refuse a tensorfile that cannot feed `batches` x `batch_size` inputs of H x W x 3."""
    height, width = input_hw
    shape = info.record_shape
    expected = f"(batch, {height}, {width}, 3)"
    if len(shape) != 4 or tuple(shape[1:]) != (height, width, 3):
        hint = ""
        if len(shape) == 4 and tuple(shape[1:]) == (3, height, width):
            hint = " (it is channels_first; BodyPoseNet is exported channels_last)"
        raise UserError(
            f"--cal_data_file {info.path} holds batches of shape {tuple(shape)}, but the "
            f"network input is -d {height},{width},3, i.e. batches of {expected}{hint}: "
            "delete the tensorfile to regenerate it from --cal_image_dir, or pass -d to match"
        )
    if shape[0] < batch_size:
        raise UserError(
            f"--cal_data_file {info.path} holds batches of {shape[0]} images, fewer than "
            f"--batch_size {batch_size}"
        )
    if info.count < batches:
        raise UserError(
            f"--cal_data_file {info.path} holds {info.count} batches, fewer than "
            f"--batches {batches}"
        )


def read_batches(path: Path, batches: int, batch_size: int) -> Iterator[npt.NDArray[np.float32]]:
    """The first `batches` records, each cut to `batch_size` images, as float32."""
    try:
        with h5py.File(path, "r") as db:
            for index in range(batches):
                data = _dataset(db, index, path)[:batch_size]
                yield np.ascontiguousarray(data, dtype=np.float32)
    except OSError as exc:
        raise UserError(f"--cal_data_file {path} cannot be read: {exc}") from exc


def check_records(path: Path, batches: int, batch_size: int, input_hw: tuple[int, int]) -> None:
    """Every one of the first `batches` records holds at least `batch_size` H x W x 3 images.

    The header's `shape` is the first record's; a file written with
    `enforce_same_shape=False`, or cut short, may hold a shorter record
    further on, which a calibrator would meet half-way through a build.
    """
    height, width = input_hw
    try:
        with h5py.File(path, "r") as db:
            for index in range(batches):
                shape = tuple(int(d) for d in _dataset(db, index, path).shape)
                if len(shape) != 4 or shape[1:] != (height, width, 3) or shape[0] < batch_size:
                    raise UserError(
                        f"--cal_data_file {path}: record {index} holds an array of shape "
                        f"{shape}, not at least --batch_size {batch_size} images of "
                        f"{height}x{width}x3: the calibration would stop there; regenerate "
                        "the tensorfile"
                    )
    except OSError as exc:
        raise UserError(f"--cal_data_file {path} cannot be read: {exc}") from exc
