"""Encryption codecs for TAO model files (.tlt, .etlt).

Two implementations sit behind `ModelCodec`: NVIDIA's own (`eff_tao_encryption`,
present only inside NVIDIA's TAO containers) and our documented open codec. See
`open_codec` for the format and `nvidia_codec` for the wrapper.
"""

from bodypose_exporter.codec.base import ModelCodec
from bodypose_exporter.codec.registry import available_codecs, codec_by_name

__all__ = ["ModelCodec", "available_codecs", "codec_by_name"]
