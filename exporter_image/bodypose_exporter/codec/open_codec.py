"""Our open implementation of the TAO model-file cipher.

Layout, as NVIDIA publishes it (docstrings of `nvidia_tao_tf1/encoding/encoding.py`
in NVIDIA/tao_tensorflow1_backend, and `nvidia_tao_deploy/utils/decoding.py` in
NVIDIA/tao_deploy): a 256-bit key derived from the key string by PBKDF2, AES in
CTR mode over the payload 1024 bytes at a time, the nonce written first.

The PBKDF2 parameters NVIDIA uses live in its closed `eff_tao_encryption`
module, so files written here are *not* readable by TAO or DeepStream; the
manifest says `codec: open-pbkdf2-aes256ctr-v1` so nobody mistakes them. Our
parameters, fixed for version 1 of this codec:

- key derivation: PBKDF2-HMAC-SHA256, 100 000 iterations, salt
  ``b"bodypose-export/open-codec/v1"``, 32-byte output (AES-256);
- nonce: 16 random bytes (the full initial counter block of AES-CTR), written
  first;
- cipher: AES-256-CTR from the `cryptography` package; no authentication tag,
  exactly like the published layout, so a wrong key is detected by checking the
  decrypted payload (see `tao_files`), not by the cipher.

A fixed salt is acceptable here because the random nonce already makes every
ciphertext unique; the salt only separates our derivation from other uses of
the same key string.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import BinaryIO

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

CHUNK_BYTES = 1024
NONCE_BYTES = 16
PBKDF2_ITERATIONS = 100_000
PBKDF2_SALT = b"bodypose-export/open-codec/v1"


@lru_cache(maxsize=8)
def derive_key(key: str) -> bytes:
    """256-bit AES key for a TAO key string (cached: derivation is deliberately slow)."""
    kdf = PBKDF2HMAC(
        algorithm=hashes.SHA256(), length=32, salt=PBKDF2_SALT, iterations=PBKDF2_ITERATIONS
    )
    return kdf.derive(key.encode("utf-8"))


class OpenCodec:
    """AES-256-CTR with PBKDF2-HMAC-SHA256 key derivation (parameters above)."""

    name = "open-pbkdf2-aes256ctr-v1"

    def encrypt_stream(self, src: BinaryIO, dst: BinaryIO, key: str) -> None:
        nonce = os.urandom(NONCE_BYTES)
        encryptor = Cipher(algorithms.AES(derive_key(key)), modes.CTR(nonce)).encryptor()
        dst.write(nonce)
        while chunk := src.read(CHUNK_BYTES):
            dst.write(encryptor.update(chunk))
        dst.write(encryptor.finalize())

    def decrypt_stream(self, src: BinaryIO, dst: BinaryIO, key: str) -> None:
        nonce = src.read(NONCE_BYTES)
        if len(nonce) != NONCE_BYTES:
            raise ValueError("encrypted payload is shorter than its nonce")
        decryptor = Cipher(algorithms.AES(derive_key(key)), modes.CTR(nonce)).decryptor()
        while chunk := src.read(CHUNK_BYTES):
            dst.write(decryptor.update(chunk))
        dst.write(decryptor.finalize())
