"""Reading and writing TAO's encrypted model files, with wrong-key detection.

Layouts (NVIDIA/tao_deploy `nvidia_tao_deploy/utils/decoding.py`, and the
encoding docstrings of NVIDIA/tao_tensorflow1_backend
`nvidia_tao_tf1/encoding/encoding.py`):

- ``.tlt``: the encrypted Keras HDF5 model, nothing else.
- ``.etlt``: a 4-byte little-endian signed length of the input node name, that
  name (length 0 means the payload is ONNX, otherwise UFF), then the encrypted
  payload.

The cipher carries no authentication tag, so a wrong key yields noise rather
than an error. We detect it by checking the decrypted bytes: the HDF5 signature
for a ``.tlt``, an ONNX ``ModelProto`` that parses for an ``.etlt``. Before
that, a file whose bytes are not ciphertext at all (plain HDF5, text, an image)
is reported as "not a TAO model" rather than as a wrong key: ciphertext has
close to 8 bits of entropy per byte, ordinary files far less.
"""

from __future__ import annotations

import io
import math
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import h5py
import onnx
from google.protobuf.message import DecodeError

from bodypose_exporter.codec.base import ModelCodec
from bodypose_exporter.codec.open_codec import NONCE_BYTES
from bodypose_exporter.errors import CorruptModelError, NotATaoModelError, WrongKeyError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# A serialized ONNX ModelProto starts with field 1 (ir_version, varint): tag 0x08.
ONNX_FIRST_BYTE = b"\x08"
# Below this many bits per byte a file is plain data, not AES-CTR output.
MIN_CIPHERTEXT_ENTROPY = 7.0
ENTROPY_SAMPLE_BYTES = 4096
MIN_MODEL_BYTES = 1024
MAX_INPUT_NAME_BYTES = 4096


@dataclass(frozen=True)
class DecryptedModel:
    """Where the plain payload went and what wrote it."""

    path: Path
    codec: str
    payload_format: str  # "hdf5", "onnx" or "uff"
    input_name: str = ""


def _entropy_bits_per_byte(data: bytes) -> float:
    counts = Counter(data)
    total = len(data)
    return -sum(c / total * math.log2(c / total) for c in counts.values())


_MAGIC = (
    (HDF5_SIGNATURE, "an unencrypted HDF5 (Keras) file"),
    (b"PK\x03\x04", "a zip archive"),
    (b"\x1f\x8b", "a gzip file"),
    (b"\xff\xd8\xff", "an image (JPEG)"),
    (b"\x89PNG", "an image (PNG)"),
)


def _known_format(head: bytes) -> str | None:
    """Name of a well-known plain format `head` starts with (checked before entropy:
    compressed formats look as random as ciphertext)."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


def _describe_plain(head: bytes) -> str:
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head[:256]):
        return "a text file"
    return "plain (unencrypted) data"


def _check_looks_encrypted(path: Path, ciphertext_head: bytes, kind: str) -> None:
    known = _known_format(ciphertext_head)
    if known is not None:
        raise NotATaoModelError(
            f"{path} is not a TAO {kind} model: it is {known}, not an encrypted model "
            f"(TAO {kind} files are encrypted with the model key)"
        )
    if len(ciphertext_head) < MIN_MODEL_BYTES:
        raise NotATaoModelError(
            f"{path} is not a TAO {kind} model: it holds only {len(ciphertext_head)} bytes "
            "after its header (a truncated download?)"
        )
    sample = ciphertext_head[NONCE_BYTES : NONCE_BYTES + ENTROPY_SAMPLE_BYTES]
    if _entropy_bits_per_byte(sample) < MIN_CIPHERTEXT_ENTROPY:
        raise NotATaoModelError(
            f"{path} is not a TAO {kind} model: it looks like {_describe_plain(ciphertext_head)},"
            f" not an encrypted model (TAO {kind} files are encrypted with the model key)"
        )


def _decrypt_prefix(codec: ModelCodec, ciphertext_head: bytes, key: str) -> bytes:
    out = io.BytesIO()
    try:
        codec.decrypt_stream(io.BytesIO(ciphertext_head), out, key)
    except Exception:
        # A codec that cannot even start on this input did not write the file.
        return b""
    return out.getvalue()


def _find_codec(
    path: Path,
    ciphertext_head: bytes,
    key: str,
    codecs: list[ModelCodec],
    signature: bytes,
    kind: str,
) -> ModelCodec:
    if not key:
        raise WrongKeyError(f"no key given for {path}: TAO {kind} models need -k/--key")
    for codec in codecs:
        if _decrypt_prefix(codec, ciphertext_head, key).startswith(signature):
            return codec
    tried = ", ".join(c.name for c in codecs)
    raise WrongKeyError(
        f"wrong key for {path}: decrypting it with the given key does not yield a {kind} model "
        f"(codecs tried: {tried}). Check -k/--key (the key the model was trained with)."
    )


def _decrypt_file(codec: ModelCodec, src_path: Path, offset: int, dst: Path, key: str) -> None:
    with src_path.open("rb") as src, dst.open("wb") as out:
        src.seek(offset)
        codec.decrypt_stream(src, out, key)


def read_tlt(path: Path, key: str, codecs: list[ModelCodec], dst: Path) -> DecryptedModel:
    """Decrypt a `.tlt` into an HDF5 file at `dst`."""
    with path.open("rb") as f:
        head = f.read(NONCE_BYTES + ENTROPY_SAMPLE_BYTES)
    _check_looks_encrypted(path, head, ".tlt")
    codec = _find_codec(path, head, key, codecs, HDF5_SIGNATURE, ".tlt (Keras HDF5)")
    _decrypt_file(codec, path, 0, dst, key)
    return DecryptedModel(path=dst, codec=codec.name, payload_format="hdf5")


def write_tlt(h5_path: Path, dst: Path, key: str, codec: ModelCodec) -> None:
    """Encrypt a Keras HDF5 file into a `.tlt`."""
    with h5_path.open("rb") as src, dst.open("wb") as out:
        codec.encrypt_stream(src, out, key)


def read_etlt(path: Path, key: str, codecs: list[ModelCodec], dst: Path) -> DecryptedModel:
    """Decrypt an `.etlt` into its plain payload at `dst` (ONNX, or UFF for old files)."""
    with path.open("rb") as f:
        raw_len = f.read(4)
        if len(raw_len) != 4:
            raise NotATaoModelError(f"{path} is not a TAO .etlt model: it is empty or truncated")
        (name_len,) = struct.unpack("<i", raw_len)
        if not 0 <= name_len <= MAX_INPUT_NAME_BYTES:
            raise NotATaoModelError(
                f"{path} is not a TAO .etlt model: its header gives an input-name length of "
                f"{name_len}"
            )
        input_name = f.read(name_len).decode("utf-8", errors="replace")
        offset = 4 + name_len
        head = f.read(NONCE_BYTES + ENTROPY_SAMPLE_BYTES)
    _check_looks_encrypted(path, head, ".etlt")
    payload_format = "uff" if name_len else "onnx"
    if payload_format == "uff":
        # UFF is gone from TensorRT 10; TAO's UFF .etlt files cannot be used here.
        raise NotATaoModelError(
            f"{path} is a UFF .etlt (input node {input_name!r}); only ONNX .etlt files are "
            "supported (TensorRT 10 removed the UFF parser)"
        )
    codec = _find_codec(path, head, key, codecs, ONNX_FIRST_BYTE, ".etlt (ONNX)")
    _decrypt_file(codec, path, offset, dst, key)
    _check_onnx_payload(path, dst)
    return DecryptedModel(path=dst, codec=codec.name, payload_format=payload_format)


def _check_onnx_payload(path: Path, onnx_path: Path) -> None:
    try:
        onnx.load(str(onnx_path), load_external_data=False)
    except DecodeError as exc:
        # One matching byte by chance (1 in 256) is not a parseable model.
        raise WrongKeyError(
            f"wrong key for {path}: the decrypted payload is not an ONNX model ({exc})"
        ) from exc


def write_etlt(onnx_path: Path, dst: Path, key: str, codec: ModelCodec) -> None:
    """Encrypt an ONNX model into an `.etlt` (input-name length 0: ONNX payload)."""
    with onnx_path.open("rb") as src, dst.open("wb") as out:
        out.write(struct.pack("<i", 0))
        codec.encrypt_stream(src, out, key)


def check_hdf5_complete(path: Path, source: Path | str) -> None:
    """Raise CorruptModelError if the decrypted HDF5 file is truncated or damaged."""
    try:
        with h5py.File(path, "r") as f:
            if "model_config" not in f.attrs:
                raise CorruptModelError(
                    f"{source} decrypts to an HDF5 file without a Keras model in it "
                    "(no 'model_config' attribute): not a TAO model export"
                )
    except OSError as exc:
        raise CorruptModelError(
            f"{source} is truncated or corrupted: the key is right but the decrypted model "
            f"cannot be read ({exc})"
        ) from exc
