"""An image into the network, as TAO's bpnet inferencer does for engines, and the way back.

The pixels are calibration's (`calibration/preprocess.py`, which
follows NVIDIA/tao_tensorflow1_backend `nvidia_tao_tf1/cv/bpnet/inferencer/
utils.py`: grey pad to the network's aspect ratio, half before and the rest
after, INTER_CUBIC resize, BGR to RGB, `pixel / 256 - 0.5`), so calibration,
verification and evaluation feed the network the same input. What this
module adds is the geometry (`Letterbox`), which evaluation needs to bring
keypoints back to the original image as TAO does
(`BpNetInferencer.run_pipeline`, `BpNetPostprocessor.get_final_keypoints`):
x = x_net / fx - left, y = y_net / fy - top.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bodypose_exporter.calibration.images import CorruptImageError, decode
from bodypose_exporter.calibration.preprocess import Normalization, pad_to_aspect, preprocess


@dataclass(frozen=True)
class Letterbox:
    """Where the image went: grey pads added (pixels of the original) and resize factors."""

    top: int
    left: int
    fy: float  # network height / padded height
    fx: float  # network width / padded width

    def to_image(self, x: float, y: float) -> tuple[float, float]:
        """Network-input pixel coordinates -> original image coordinates."""
        return x / self.fx - self.left, y / self.fy - self.top


def letterbox(
    bgr: npt.NDArray[np.uint8],
    height: int,
    width: int,
    normalization: Normalization | None = None,
) -> tuple[npt.NDArray[np.float32], Letterbox]:
    """A decoded BGR image -> (network input H x W x 3 float32 RGB, its geometry)."""
    padded_h, padded_w = pad_to_aspect(bgr, height, width).shape[:2]
    # pad_to_aspect puts int(pad / 2) before the image, as TAO's pad_image_input does.
    top = int((padded_h - bgr.shape[0]) / 2.0)
    left = int((padded_w - bgr.shape[1]) / 2.0)
    geometry = Letterbox(top, left, height / padded_h, width / padded_w)
    return preprocess(bgr, height, width, normalization or Normalization()), geometry


def read_image(path: Path) -> npt.NDArray[np.uint8]:
    """Decode as TAO does (cv2.imread colour); ValueError naming the file if it cannot be used."""
    try:
        return decode(path)
    except CorruptImageError as exc:
        raise ValueError(f"{path}: {exc}") from exc
