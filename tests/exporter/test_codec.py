"""TAO file formats: round trips, and the wrong-key / not-a-model / corrupt distinctions."""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import h5py
import numpy as np
import pytest

from bodypose_exporter.codec.open_codec import NONCE_BYTES, OpenCodec
from bodypose_exporter.codec.registry import available_codecs, codec_by_name
from bodypose_exporter.codec.tao_files import (
    HDF5_SIGNATURE,
    check_hdf5_complete,
    read_etlt,
    read_tlt,
    write_etlt,
    write_tlt,
)
from bodypose_exporter.errors import (
    CorruptModelError,
    NotATaoModelError,
    UserError,
    WrongKeyError,
)

KEY = "tlt_encode"


@pytest.fixture
def small_h5(tmp_path: Path) -> Path:
    """A real HDF5 file with a Keras-style model_config attribute and some weights."""
    path = tmp_path / "model.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = '{"class_name": "Functional"}'
        f.create_dataset("w", data=np.random.default_rng(0).normal(size=(64, 64)).astype("f4"))
    return path


def test_open_codec_round_trip_streams_in_chunks() -> None:
    payload = os.urandom(10_000) + b"tail"
    enc, dec = io.BytesIO(), io.BytesIO()
    OpenCodec().encrypt_stream(io.BytesIO(payload), enc, KEY)
    assert len(enc.getvalue()) == NONCE_BYTES + len(payload)
    assert enc.getvalue()[NONCE_BYTES:] != payload
    enc.seek(0)
    OpenCodec().decrypt_stream(enc, dec, KEY)
    assert dec.getvalue() == payload


def test_open_codec_uses_a_fresh_nonce_each_time() -> None:
    a, b = io.BytesIO(), io.BytesIO()
    OpenCodec().encrypt_stream(io.BytesIO(b"x" * 100), a, KEY)
    OpenCodec().encrypt_stream(io.BytesIO(b"x" * 100), b, KEY)
    assert a.getvalue() != b.getvalue()


def test_auto_codec_here_is_the_open_one() -> None:
    # NVIDIA's module exists only inside TAO containers; none is installed here.
    assert [c.name for c in available_codecs()] == ["open-pbkdf2-aes256ctr-v1"]
    with pytest.raises(UserError, match="only inside NVIDIA's TAO containers"):
        codec_by_name("nvidia")


def test_tlt_round_trip(tmp_path: Path, small_h5: Path) -> None:
    tlt = tmp_path / "m.tlt"
    write_tlt(small_h5, tlt, KEY, OpenCodec())
    assert not tlt.read_bytes().startswith(HDF5_SIGNATURE)
    out = read_tlt(tlt, KEY, available_codecs(), tmp_path / "out.h5")
    assert out.path.read_bytes() == small_h5.read_bytes()
    assert out.codec == "open-pbkdf2-aes256ctr-v1"
    check_hdf5_complete(out.path, tlt)


def test_tlt_wrong_key_is_reported_as_wrong_key(tmp_path: Path, small_h5: Path) -> None:
    tlt = tmp_path / "m.tlt"
    write_tlt(small_h5, tlt, KEY, OpenCodec())
    with pytest.raises(WrongKeyError, match=r"wrong key for .*m\.tlt.*Check -k/--key"):
        read_tlt(tlt, "not-the-key", available_codecs(), tmp_path / "out.h5")


def test_tlt_empty_key_says_a_key_is_needed(tmp_path: Path, small_h5: Path) -> None:
    tlt = tmp_path / "m.tlt"
    write_tlt(small_h5, tlt, KEY, OpenCodec())
    with pytest.raises(WrongKeyError, match="need -k/--key"):
        read_tlt(tlt, "", available_codecs(), tmp_path / "out.h5")


def test_plain_hdf5_is_not_a_tao_model(tmp_path: Path, small_h5: Path) -> None:
    with pytest.raises(NotATaoModelError, match="it is an unencrypted HDF5"):
        read_tlt(small_h5, KEY, available_codecs(), tmp_path / "out.h5")


def test_text_file_is_not_a_tao_model(tmp_path: Path) -> None:
    path = tmp_path / "notes.tlt"
    path.write_text("model: bpnet\n" * 500)
    with pytest.raises(NotATaoModelError, match="looks like a text file"):
        read_tlt(path, KEY, available_codecs(), tmp_path / "out.h5")


def test_tiny_file_is_not_a_tao_model(tmp_path: Path) -> None:
    path = tmp_path / "tiny.tlt"
    path.write_bytes(os.urandom(100))
    with pytest.raises(NotATaoModelError, match="holds only 100 bytes"):
        read_tlt(path, KEY, available_codecs(), tmp_path / "out.h5")


def test_truncated_tlt_is_corrupt_not_wrong_key(tmp_path: Path, small_h5: Path) -> None:
    tlt = tmp_path / "m.tlt"
    write_tlt(small_h5, tlt, KEY, OpenCodec())
    data = tlt.read_bytes()
    tlt.write_bytes(data[: len(data) // 2])
    out = read_tlt(tlt, KEY, available_codecs(), tmp_path / "out.h5")
    with pytest.raises(CorruptModelError, match="truncated or corrupted"):
        check_hdf5_complete(out.path, tlt)


def test_etlt_layout_and_round_trip(tmp_path: Path) -> None:
    import onnx
    import onnx.numpy_helper
    from onnx import TensorProto, helper

    bias = onnx.numpy_helper.from_array(np.arange(4096, dtype=np.float32).reshape(1, 4096), "b")
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "b"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4096])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4096])],
        initializer=[bias],
    )
    onnx_path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph), str(onnx_path))
    etlt = tmp_path / "m.etlt"
    write_etlt(onnx_path, etlt, KEY, OpenCodec())
    raw = etlt.read_bytes()
    assert struct.unpack("<i", raw[:4]) == (0,)  # name length 0: the payload is ONNX
    out = read_etlt(etlt, KEY, available_codecs(), tmp_path / "back.onnx")
    assert out.payload_format == "onnx"
    assert out.path.read_bytes() == onnx_path.read_bytes()
    with pytest.raises(WrongKeyError, match="wrong key"):
        read_etlt(etlt, "other", available_codecs(), tmp_path / "bad.onnx")


def test_etlt_with_absurd_header_is_not_a_tao_model(tmp_path: Path) -> None:
    path = tmp_path / "x.etlt"
    path.write_bytes(struct.pack("<i", 1 << 30) + os.urandom(2048))
    with pytest.raises(NotATaoModelError, match="input-name length"):
        read_etlt(path, KEY, available_codecs(), tmp_path / "o")
