"""NVIDIA's own TAO codec, used when `eff_tao_encryption` is importable.

That module ships only inside NVIDIA's TAO containers (it is not on PyPI); the
exporter image is built on such a container so that its `.etlt` files are
byte-compatible with TAO and DeepStream. The call shape follows NVIDIA's use in
`nvidia_tao_deploy/utils/decoding.py` (NVIDIA/tao_deploy):
``encrypt_stream(src, dst, key_bytes, encryption=True, rewind=False)``.
"""

from __future__ import annotations

import importlib
from typing import Any, BinaryIO


def load_nvidia_module() -> Any | None:
    """The `eff_tao_encryption.tao_codec` module, or None where it is absent."""
    try:
        return importlib.import_module("eff_tao_encryption.tao_codec")
    except ImportError:
        return None


class NvidiaCodec:
    """Thin wrapper over NVIDIA's closed codec."""

    name = "nvidia-eff-tao-encryption"

    def __init__(self, module: Any) -> None:
        self._module = module

    def encrypt_stream(self, src: BinaryIO, dst: BinaryIO, key: str) -> None:
        self._module.encrypt_stream(src, dst, key.encode("utf-8"), encryption=True, rewind=False)

    def decrypt_stream(self, src: BinaryIO, dst: BinaryIO, key: str) -> None:
        self._module.decrypt_stream(src, dst, key.encode("utf-8"), encryption=True, rewind=False)
