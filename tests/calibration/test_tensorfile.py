"""The tensorfile: TAO's HDF5 TensorFile layout, both ways, and the checks on reuse."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from bodypose_exporter.calibration.tensorfile import (
    TensorFileWriter,
    check_matches,
    inspect,
    read_batches,
)
from bodypose_exporter.errors import UserError


def _batches(count: int, shape: tuple[int, ...] = (2, 8, 12, 3)) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.uniform(-0.5, 0.5, shape).astype(np.float32) for _ in range(count)]


def test_written_file_has_taos_layout(tmp_path: Path) -> None:
    path = tmp_path / "cal.tensorfile"
    with TensorFileWriter(path) as writer:
        for batch in _batches(3):
            writer.write(batch)
    with h5py.File(path, "r") as db:
        assert int(db.attrs["count"]) == 3
        assert tuple(db.attrs["shape"]) == (2, 8, 12, 3)
        # TAO: GROUP_NAME_PREFIX "_tensorfile_array_key_" + "_%d", dataset DEFAULT_ARRAY_KEY.
        assert sorted(db.keys()) == [f"_tensorfile_array_key__{i}" for i in range(3)]
        data = db["_tensorfile_array_key__1"]["_tensorfile_array_key_"][()]
    np.testing.assert_array_equal(data, _batches(3)[1])
    assert not list(tmp_path.glob(".*partial"))


def test_round_trip_and_batch_size_cut(tmp_path: Path) -> None:
    path = tmp_path / "cal.tensorfile"
    with TensorFileWriter(path) as writer:
        for batch in _batches(4, (3, 8, 12, 3)):
            writer.write(batch)
    info = inspect(path)
    assert (info.count, info.record_shape) == (4, (3, 8, 12, 3))
    got = list(read_batches(path, batches=2, batch_size=2))
    assert len(got) == 2 and got[0].shape == (2, 8, 12, 3) and got[0].dtype == np.float32
    np.testing.assert_array_equal(got[1], _batches(4, (3, 8, 12, 3))[1][:2])


def test_reads_a_file_written_the_way_tao_writes_it(tmp_path: Path) -> None:
    # TAO's prepare_chunk builds float64 batches and TensorFile stores them gzip-compressed.
    path = tmp_path / "tao.tensorfile"
    batches = [b.astype(np.float64) for b in _batches(2)]
    with h5py.File(path, "w") as db:
        db.attrs["count"] = 0
        for i, batch in enumerate(batches):
            if "shape" not in db.attrs:
                db.attrs["shape"] = batch.shape
            group = db.create_group(f"_tensorfile_array_key__{i}")
            group.create_dataset("_tensorfile_array_key_", data=batch, compression="gzip")
            db.attrs["count"] = i + 1
    got = list(read_batches(path, 2, 2))
    np.testing.assert_allclose(got[1], batches[1].astype(np.float32))


def test_interrupted_write_leaves_nothing_to_reuse(tmp_path: Path) -> None:
    path = tmp_path / "cal.tensorfile"
    with pytest.raises(RuntimeError), TensorFileWriter(path) as writer:
        writer.write(_batches(1)[0])
        raise RuntimeError("calibration failed half way")
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_shape_mismatch_with_network_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cal.tensorfile"
    with TensorFileWriter(path) as writer:
        writer.write(_batches(1, (2, 8, 12, 3))[0])
    with pytest.raises(UserError) as err:
        check_matches(inspect(path), 1, 2, (64, 96))
    message = str(err.value)
    assert "holds batches of shape (2, 8, 12, 3)" in message
    assert "-d 64,96,3" in message and "(batch, 64, 96, 3)" in message


def test_channels_first_tensorfile_gets_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "cal.tensorfile"
    with TensorFileWriter(path) as writer:
        writer.write(_batches(1, (2, 3, 8, 12))[0])
    with pytest.raises(UserError, match="channels_first"):
        check_matches(inspect(path), 1, 2, (8, 12))


def test_too_few_batches_or_too_small_batches_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "cal.tensorfile"
    with TensorFileWriter(path) as writer:
        for batch in _batches(2):
            writer.write(batch)
    info = inspect(path)
    with pytest.raises(UserError, match="holds 2 batches, fewer than --batches 3"):
        check_matches(info, 3, 2, (8, 12))
    with pytest.raises(UserError, match="batches of 2 images, fewer than --batch_size 4"):
        check_matches(info, 2, 4, (8, 12))
    check_matches(info, 2, 1, (8, 12))  # larger records are cut, as TAO's calibrator does


def test_not_a_tensorfile(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tensorfile"
    junk.write_text("not hdf5")
    with pytest.raises(UserError, match="cannot be read as a tensorfile"):
        inspect(junk)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as db:
        db.create_dataset("weights", data=np.zeros(3))
    with pytest.raises(UserError, match="not a TAO tensorfile"):
        inspect(other)
