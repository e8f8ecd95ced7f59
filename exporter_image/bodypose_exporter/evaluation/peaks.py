"""Keypoint candidates from a heatmap, as TAO's bpnet post-processor finds them.

NVIDIA/tao_tensorflow1_backend `nvidia_tao_tf1/cv/bpnet/inferencer/
postprocessor.py` (`find_peaks`, `peak_nms`, numpy path) and `utils.py`
(`apply_gaussian_smoothing` with OpenCV, `nms_np`): drop the background
channel; smooth each joint channel with a 5x5 Gaussian, sigma 3; keep pixels
that are >= their four neighbours (the border counts as 0) and above 0; of
those keep the ones whose smoothed value exceeds `heatmap_threshold` (0.1).
A candidate's score is the unsmoothed heatmap value at that pixel. The
candidates are numbered in joint order, then row-major, as TAO numbers them.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

HEATMAP_THRESHOLD = 0.1
GAUSSIAN_KERNEL = 5
GAUSSIAN_SIGMA = 3.0


@dataclass(frozen=True)
class Peak:
    x: int
    y: int
    score: float
    id: int  # running number over all joints


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


def find_peaks(
    heatmap: npt.NDArray[np.float32], threshold: float = HEATMAP_THRESHOLD
) -> list[list[Peak]]:
    """Candidates per joint for one (H, W, joints + 1) heatmap."""
    joints = heatmap.shape[-1] - 1
    found: list[list[Peak]] = []
    counter = 0
    for joint in range(joints):
        channel = heatmap[:, :, joint]
        peaks = []
        for y, x in smoothed_maxima(channel, threshold):
            peaks.append(Peak(int(x), int(y), float(channel[y, x]), counter))
            counter += 1
        found.append(peaks)
    return found
