"""Keypoint candidates from a heatmap, as TAO's bpnet post-processor finds them, capped per joint.

NVIDIA/tao_tensorflow1_backend `nvidia_tao_tf1/cv/bpnet/inferencer/
postprocessor.py` (`find_peaks`, `peak_nms`, numpy path) and `utils.py`
(`apply_gaussian_smoothing` with OpenCV, `nms_np`): drop the background
channel; smooth each joint channel with a 5x5 Gaussian, sigma 3; keep pixels
that are >= their four neighbours (the border counts as 0) and above 0; of
those keep the ones whose smoothed value exceeds `heatmap_threshold` (0.1).
A candidate's score is the unsmoothed heatmap value at that pixel. The
candidates are numbered in joint order, then row-major, as TAO numbers them.
The candidates themselves are `output_agreement.smoothed_maxima`, which engine
verification's peak agreement counts too.

The cap: TAO's inferencer keeps every candidate, and the limb
step scores every (start, end) pair of candidates of an edge
(`connections.pair_scores`: arrays of candidates x candidates x 10 samples).
A flat or noisy heatmap, which a broken engine puts out, makes nearly every
pixel a candidate: 10^4-10^5 per joint, and the pair arrays need far more
memory than a node has (one such engine's evaluation was killed at 24 GB).
NVIDIA's own GPU decoder for this kind of network caps candidates per part
instead: NVIDIA-AI-IOT/trt_pose `trt_pose/parse_objects.py`
(`ParseObjects(..., max_num_parts=100)`) and `trt_pose/parse/find_peaks.cpp`
(each channel's scan stops at `M` peaks), which NVIDIA-AI-IOT/
deepstream_pose_estimation's `post_process.cpp` (`find_peaks(..., max_count)`)
runs in DeepStream. We cap at the same 100 per joint, keeping the highest
scores (trt_pose keeps the first in scan order; on a flat heatmap, where all
scores tie, both keep the same row-major first ones), so an image that
legitimately holds more keeps its strongest. A healthy BodyPoseNet gives
about one candidate per person per joint, so a capped joint means the
heatmap is broken, and the evaluation says so (`Candidates.capped`,
`figures.ApFigures.peak_candidates_capped`, the AP gate's refusal).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from bodypose_exporter.output_agreement import HEATMAP_THRESHOLD, smoothed_maxima

#: Most candidates kept per joint and image (trt_pose's `max_num_parts`, see above).
MAX_CANDIDATES_PER_JOINT = 100


@dataclass(frozen=True)
class Peak:
    x: int
    y: int
    score: float
    id: int  # running number over all joints


@dataclass(frozen=True)
class Candidates:
    """One image's candidates per joint, and the joints whose candidates were capped."""

    peaks: list[list[Peak]]
    #: joint index -> how many candidates it had before the cap (only joints over it).
    capped: dict[int, int] = field(default_factory=dict)


def strongest(
    points: npt.NDArray[np.int64], scores: npt.NDArray[np.float32], cap: int
) -> npt.NDArray[np.int64]:
    """The `cap` highest-scoring of row-major `points` (ties: the earlier), still row-major."""
    if len(points) <= cap:
        return points
    order = np.lexsort((np.arange(len(points)), -scores.astype(np.float64)))[:cap]
    return points[np.sort(order)]


def find_peaks(
    heatmap: npt.NDArray[np.float32],
    threshold: float = HEATMAP_THRESHOLD,
    cap: int = MAX_CANDIDATES_PER_JOINT,
) -> Candidates:
    """Candidates per joint for one (H, W, joints + 1) heatmap, at most `cap` per joint."""
    joints = heatmap.shape[-1] - 1
    found: list[list[Peak]] = []
    capped: dict[int, int] = {}
    counter = 0
    for joint in range(joints):
        channel = heatmap[:, :, joint]
        points = smoothed_maxima(channel, threshold)
        if len(points) > cap:
            capped[joint] = len(points)
            points = strongest(points, channel[points[:, 0], points[:, 1]], cap)
        peaks = []
        for y, x in points:
            peaks.append(Peak(int(x), int(y), float(channel[y, x]), counter))
            counter += 1
        found.append(peaks)
    return Candidates(found, capped)
