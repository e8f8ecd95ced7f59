"""Keypoint candidates from a heatmap, as TAO's bpnet post-processor finds them.

NVIDIA/tao_tensorflow1_backend `nvidia_tao_tf1/cv/bpnet/inferencer/
postprocessor.py` (`find_peaks`, `peak_nms`, numpy path) and `utils.py`
(`apply_gaussian_smoothing` with OpenCV, `nms_np`): drop the background
channel; smooth each joint channel with a 5x5 Gaussian, sigma 3; keep pixels
that are >= their four neighbours (the border counts as 0) and above 0; of
those keep the ones whose smoothed value exceeds `heatmap_threshold` (0.1).
A candidate's score is the unsmoothed heatmap value at that pixel. The
candidates are numbered in joint order, then row-major, as TAO numbers them.
The candidates themselves are `metrics.smoothed_maxima`, which engine
verification's peak agreement counts too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bodypose_exporter.metrics import HEATMAP_THRESHOLD, smoothed_maxima


@dataclass(frozen=True)
class Peak:
    x: int
    y: int
    score: float
    id: int  # running number over all joints


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
