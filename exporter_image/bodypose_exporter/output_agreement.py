"""How far two sets of BodyPoseNet outputs agree: the figures calibration and verification share.

One owner for the numbers both the INT8 calibration (`calibration.agreement`,
QDQ model vs FP32 on held-back images) and engine verification
(`verification.agreement_figures`, an engine vs the FP32 reference) report, so that a
cal.bin's figures and an engine's read the same way:

- `output_role` / `output_roles`: which output is the heatmap and which the
  PAF, by name (`heatmap...`, `paf...`, the SDK model's `conv2d_transpose_1`
  PAF), else by channel count (19 heatmap, 38 PAF for TAO's COCO skeleton);
- `per_image_cosine`: cosine similarity of the flattened outputs, per image;
- `argmax_peaks`: each keypoint channel's maximum (background channel left
  out), per image;
- `smoothed_maxima`: keypoint candidates as TAO's bpnet post-processor finds
  them (NVIDIA/tao_tensorflow1_backend `nvidia_tao_tf1/cv/bpnet/inferencer/
  postprocessor.py` `find_peaks`, `utils.py` `apply_gaussian_smoothing`):
  5x5 Gaussian, sigma 3, 4-neighbour maxima above 0 and above the threshold
  (0.1). Evaluation's decoder (`evaluation.peaks`) starts from the same
  candidates.
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float32]

HEATMAP_THRESHOLD = 0.1
GAUSSIAN_KERNEL = 5
GAUSSIAN_SIGMA = 3.0


def output_role(name: str, channels: int) -> str | None:
    """ "heatmap", "paf" or None for an output of this name and channel count."""
    lowered = name.lower()
    if "heatmap" in lowered or "cmap" in lowered:
        return "heatmap"
    if "paf" in lowered or "conv2d_transpose_1" in lowered:
        return "paf"
    return {19: "heatmap", 38: "paf"}.get(channels)


def output_roles(outputs: Mapping[str, Array]) -> dict[str, str]:
    """{"heatmap": name, "paf": name} for the outputs that can be told apart (first of each)."""
    found: dict[str, str] = {}
    for name, value in outputs.items():
        role = output_role(name, int(value.shape[-1]))
        if role is not None and role not in found:
            found[role] = name
    return found


def per_image_cosine(a: Array, b: Array) -> npt.NDArray[np.float64]:
    """Cosine similarity of each image's flattened output (1.0 where both are all zero)."""
    x = a.reshape(a.shape[0], -1).astype(np.float64)
    y = b.reshape(b.shape[0], -1).astype(np.float64)
    norms = np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1)
    dots = (x * y).sum(axis=1)
    return np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0), 1.0)


def argmax_peaks(heatmap: Array) -> npt.NDArray[np.int64]:
    """(images, keypoints) flat index of each keypoint channel's maximum (NHWC, background last)."""
    n, h, w, c = heatmap.shape
    keypoints = heatmap[..., : max(1, c - 1)]
    return np.asarray(keypoints.reshape(n, h * w, -1).argmax(axis=1), dtype=np.int64)


def smoothed_maxima(channel: npt.NDArray[np.float32], threshold: float) -> npt.NDArray[np.int64]:
    """(n, 2) array of (y, x) of the smoothed channel's 4-neighbour maxima above threshold."""
    smooth = cv2.GaussianBlur(
        channel.astype(np.float32),
        (GAUSSIAN_KERNEL, GAUSSIAN_KERNEL),
        sigmaX=GAUSSIAN_SIGMA,
        sigmaY=GAUSSIAN_SIGMA,
    )
    padded = np.pad(smooth, 1, constant_values=0.0)
    h, w = smooth.shape
    neighbours = np.stack(
        [
            padded[1 : h + 1, 0:w],
            padded[1 : h + 1, 2 : w + 2],
            padded[0:h, 1 : w + 1],
            padded[2 : h + 2, 1 : w + 1],
        ]
    )
    keep = (smooth >= neighbours.max(axis=0)) & (smooth > 0.0) & (smooth > threshold)
    return np.argwhere(keep).astype(np.int64)
