"""The codec interface: a stream cipher over a whole model file."""

from __future__ import annotations

from typing import BinaryIO, Protocol


class ModelCodec(Protocol):
    """Encrypts and decrypts TAO model payloads as streams.

    `name` is recorded in every manifest so that a reader knows which codec
    wrote a file (the two are not interchangeable: same layout, different key
    derivation).
    """

    name: str

    def encrypt_stream(self, src: BinaryIO, dst: BinaryIO, key: str) -> None: ...

    def decrypt_stream(self, src: BinaryIO, dst: BinaryIO, key: str) -> None: ...
