"""Known-answer vectors: the open codec and the cal.bin text, pinned byte for byte.

The expected bytes were computed once with the `cryptography` primitives directly
(PBKDF2HMAC and Cipher(AES, CTR), not through `OpenCodec`), for the parameters
the codec's docstring and the README document, and pasted here as constants:

    key = PBKDF2HMAC(SHA256(), length=32, salt=b"bodypose-export/open-codec/v1",
                     iterations=100_000).derive(b"nvidia_tlt")
    ciphertext = nonce + Cipher(AES(key), CTR(nonce)).encryptor().update(plaintext)

A change of any parameter (hash, iterations, salt, key length, mode, nonce
placement, counter layout) breaks every `.etlt` already written; these tests
fail on it even though a round trip through the changed code would still pass.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from bodypose_exporter.calibration import calibration_cache
from bodypose_exporter.calibration.calibration_cache import CalibrationCache
from bodypose_exporter.codec import open_codec
from bodypose_exporter.codec.open_codec import OpenCodec

KEY = "nvidia_tlt"
DERIVED_KEY = "69ffe99d9c0df8fe96e0a24a93f2f9bab170ff83ad8caec95be67f88c97e4439"
# The low bytes ...0efe make the 128-bit counter carry into the next byte within
# the long vector below (188 blocks): the whole block is the counter, not 64 bits.
NONCE = bytes.fromhex("000102030405060708090a0b0c0d0efe")
PLAINTEXT = b"BodyPoseNet known-answer vector\n"
CIPHERTEXT = bytes.fromhex(
    "000102030405060708090a0b0c0d0efe"  # the nonce, written first
    "36de3e438f08c5dddec0dbda67a1c68c7fec050bfaaf949d47bc0b0e18b0f644"
)
# 3000 bytes: three 1024-byte chunks of the stream, the last one short.
LONG_PLAINTEXT = bytes(i % 251 for i in range(3000))
LONG_CIPHERTEXT_SHA256 = "750e813cde858a0790a1f8dd53c565bab8a14fadfabb8b75008a7bca422313a8"
LONG_CIPHERTEXT_TAIL = bytes.fromhex("27e512c361a9a12ef2e703051402c8e1")


@pytest.fixture
def fixed_nonce(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The codec's nonce source returns NONCE; records the sizes asked for."""
    asked: list[int] = []

    def urandom(n: int) -> bytes:
        asked.append(n)
        return NONCE[:n]

    monkeypatch.setattr(open_codec.os, "urandom", urandom)
    return asked


def encrypt(plaintext: bytes) -> bytes:
    out = io.BytesIO()
    OpenCodec().encrypt_stream(io.BytesIO(plaintext), out, KEY)
    return out.getvalue()


def decrypt(ciphertext: bytes, key: str = KEY) -> bytes:
    out = io.BytesIO()
    OpenCodec().decrypt_stream(io.BytesIO(ciphertext), out, key)
    return out.getvalue()


def test_the_derived_key_is_the_documented_pbkdf2() -> None:
    assert open_codec.derive_key(KEY).hex() == DERIVED_KEY


def test_encryption_gives_the_known_bytes(fixed_nonce: list[int]) -> None:
    assert encrypt(PLAINTEXT) == CIPHERTEXT
    assert fixed_nonce == [16]


def test_the_known_bytes_decrypt() -> None:
    assert decrypt(CIPHERTEXT) == PLAINTEXT


def test_a_multi_chunk_stream_gives_the_known_bytes(fixed_nonce: list[int]) -> None:
    ciphertext = encrypt(LONG_PLAINTEXT)
    assert len(ciphertext) == 16 + 3000
    assert ciphertext[:16] == NONCE
    assert ciphertext[-16:] == LONG_CIPHERTEXT_TAIL
    assert hashlib.sha256(ciphertext).hexdigest() == LONG_CIPHERTEXT_SHA256
    assert decrypt(ciphertext) == LONG_PLAINTEXT


def test_another_key_does_not_decrypt_the_known_bytes() -> None:
    assert decrypt(CIPHERTEXT, "not_the_key") != PLAINTEXT


# cal.bin: ranges (amax) chosen so the file covers a zero scale, a scale of
# exactly 1 (amax 127), a tiny and a large one, and a name holding ": ".
AMAX = {
    "input_1:0": 1.0,
    "bpnet/conv1/Relu:0": 6.0,
    "bpnet/zero:0": 0.0,
    "bpnet/unit:0": 127.0,
    "bpnet/tiny:0": 1e-4,
    "bpnet/large:0": 1000.0,
    "weird: name:0": 2.5,
}
# float32(amax / 127) as the hex of its IEEE-754 bits, computed once with
# struct.pack(">f", amax / 127) outside our code (1/127 = 2^-7 * 1.0079 -> 3c010204),
# in TensorRT's layout: no leading zeros, lower case, "0" for zero; 8.6.1 -> 8601.
CAL_BIN_TRT8 = (
    "TRT-8601-EntropyCalibration2\n"
    "input_1:0: 3c010204\n"
    "bpnet/conv1/Relu:0: 3d418306\n"
    "bpnet/zero:0: 0\n"
    "bpnet/unit:0: 3f800000\n"
    "bpnet/tiny:0: 35535dd3\n"
    "bpnet/large:0: 40fbf7f0\n"
    "weird: name:0: 3ca14285\n"
)


def test_cal_bin_text_is_the_known_file(tmp_path: Path) -> None:
    cache = CalibrationCache.from_amax(AMAX, trt_version="8.6.1.6")
    path = tmp_path / "cal.bin"
    calibration_cache.write(path, cache)
    assert path.read_bytes() == CAL_BIN_TRT8.encode("ascii")


def test_the_known_file_reads_back_and_retags() -> None:
    cache = calibration_cache.parse(CAL_BIN_TRT8)
    assert cache.version == 8601 and cache.algorithm == "EntropyCalibration2"
    assert list(cache.scales) == list(AMAX)
    assert cache.scales["bpnet/unit:0"] == 1.0 and cache.scales["bpnet/zero:0"] == 0.0
    retagged = calibration_cache.retag(CAL_BIN_TRT8.encode("ascii"), "10.3.0")
    assert retagged == CAL_BIN_TRT8.replace("TRT-8601-", "TRT-100300-").encode("ascii")
