"""Choosing a codec: NVIDIA's when present, else ours; or one named explicitly."""

from __future__ import annotations

from bodypose_exporter.codec.base import ModelCodec
from bodypose_exporter.codec.nvidia_codec import NvidiaCodec, load_nvidia_module
from bodypose_exporter.codec.open_codec import OpenCodec
from bodypose_exporter.errors import UserError

CODEC_CHOICES = ("auto", "nvidia", "open")


def available_codecs() -> list[ModelCodec]:
    """Codecs usable here, preferred first (NVIDIA's is byte-compatible with TAO)."""
    codecs: list[ModelCodec] = []
    module = load_nvidia_module()
    if module is not None:
        codecs.append(NvidiaCodec(module))
    codecs.append(OpenCodec())
    return codecs


def codec_by_name(name: str) -> list[ModelCodec]:
    """The codecs to try for `--codec NAME`, in order."""
    if name == "auto":
        return available_codecs()
    if name == "open":
        return [OpenCodec()]
    if name == "nvidia":
        module = load_nvidia_module()
        if module is None:
            raise UserError(
                "--codec nvidia needs NVIDIA's eff_tao_encryption module, which is only "
                "inside NVIDIA's TAO containers; use --codec open or --codec auto here"
            )
        return [NvidiaCodec(module)]
    raise UserError(f"unknown --codec {name!r}; choose one of {', '.join(CODEC_CHOICES)}")
