"""BodyPoseNet input preprocessing for INT8 calibration, as TAO does it in strict mode.

Followed (NVIDIA/tao_tensorflow1_backend):

- `nvidia_tao_tf1/cv/bpnet/inferencer/utils.py`: `pad_image_input` pads the BGR
  frame with grey (128, 128, 128) to the network's aspect ratio, half on each
  side (the odd pixel at the bottom/right), `resize_image` then resizes with
  `cv2.INTER_CUBIC`, `preprocess` converts BGR to RGB and `normalize_image`
  computes `image / scale - offset`.
- `nvidia_tao_tf1/cv/bpnet/inferencer/bpnet_inferencer.py`: for TensorRT models
  TAO forces `keep_aspect_ratio_mode = pad_image_input` (the "strict mode" the
  seed names), because an engine has a fixed input size. Calibrating on the
  same preprocessing the engine will see keeps the ranges honest.
- `nvidia_tao_tf1/cv/bpnet/exporter/bpnet_exporter.py`
  (`_reformat_data_preprocessing_parameters`): defaults offset 0.5 and scale
  256 per channel, RGB, no channel flip; `cv/core/export/base_exporter.py`
  (`prepare_chunk`) applies it as `(pixel - offset * scale) / scale`, the same
  numbers as the inferencer: pixel -> (pixel - 128) / 256.

One deliberate difference: TAO's generic tensorfile generator
(`BaseExporter.prepare_chunk`) stretches images to the input size with PIL
instead of padding; we follow the strict-mode inferencer, which is what the
deployed engine receives.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

#: Grey used by TAO's `pad_image_input`; it normalizes to 0.0 with the defaults.
PAD_VALUE = (128, 128, 128)


@dataclass(frozen=True)
class Normalization:
    """TAO's `normalization_params`: network input = pixel / scale - offset, per RGB channel."""

    offset: tuple[float, float, float] = (0.5, 0.5, 0.5)
    scale: tuple[float, float, float] = (256.0, 256.0, 256.0)

    @classmethod
    def from_lists(cls, offset: list[float], scale: list[float]) -> Normalization:
        """From the experiment spec's `image_offset` / `image_scale` lists (3 values each)."""
        if len(offset) != 3 or len(scale) != 3:
            raise ValueError(
                f"normalization needs 3 offsets and 3 scales (RGB), got {offset} and {scale}"
            )
        if any(s == 0 for s in scale):
            raise ValueError(f"normalization scale must not be 0, got {scale}")
        o0, o1, o2 = (float(v) for v in offset)
        s0, s1, s2 = (float(v) for v in scale)
        return cls(offset=(o0, o1, o2), scale=(s0, s1, s2))


def pad_to_aspect(bgr: npt.NDArray[np.uint8], height: int, width: int) -> npt.NDArray[np.uint8]:
    """Pad with grey to the aspect ratio width/height, as TAO's `pad_image_input`.

    The pad length is truncated with int() exactly as TAO does, so the padded
    aspect ratio can differ from the target by less than a pixel; the resize
    that follows absorbs it.
    """
    image_h, image_w = bgr.shape[:2]
    desired = width / height
    if image_w / image_h == desired:
        return bgr
    if image_w / image_h > desired:
        pad = int(image_w / desired - image_h)
        half = int(pad / 2.0)
        top, bottom, left, right = half, pad - half, 0, 0
    else:
        pad = int(image_h * desired - image_w)
        half = int(pad / 2.0)
        top, bottom, left, right = 0, 0, half, pad - half
    if pad == 0:
        return bgr
    padded = cv2.copyMakeBorder(bgr, top, bottom, left, right, cv2.BORDER_CONSTANT, value=PAD_VALUE)
    return np.asarray(padded, dtype=np.uint8)


def preprocess(
    bgr: npt.NDArray[np.uint8],
    height: int,
    width: int,
    normalization: Normalization = Normalization(),
) -> npt.NDArray[np.float32]:
    """One decoded BGR uint8 image -> the network input (height, width, 3) float32, RGB.

    TAO calls `cv2.resize(image, (0, 0), fx=width / padded_w, fy=height /
    padded_h)`; OpenCV derives the same scale factors from an explicit output
    size, so we pass the size and the output shape is exact by construction.
    """
    padded = pad_to_aspect(bgr, height, width)
    resized = cv2.resize(padded, (width, height), interpolation=cv2.INTER_CUBIC)
    rgb = cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)
    scale = np.asarray(normalization.scale, dtype=np.float32)
    offset = np.asarray(normalization.offset, dtype=np.float32)
    out: npt.NDArray[np.float32] = rgb.astype(np.float32) / scale - offset
    return out
