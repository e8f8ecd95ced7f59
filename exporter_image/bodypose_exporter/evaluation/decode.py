"""Bottom-up decoding of one image's network outputs into people, as TAO's bpnet inferencer does.

NVIDIA/tao_tensorflow1_backend `nvidia_tao_tf1/cv/bpnet/inferencer/
bpnet_inferencer.py` (`run_pipeline`, `postprocess`): the heatmap and PAF
(at the network's stride, 8) are resized by the stride with INTER_CUBIC to
the network input's resolution; candidates (`peaks`), limbs (`connections`)
and people (`grouping`) are found there; keypoints are then mapped back to
the original image through the preprocessing geometry (`preprocess.Letterbox`).
Candidates are capped per joint (`peaks.MAX_CANDIDATES_PER_JOINT`), which
bounds the limb step's memory on a broken engine's flat heatmaps; the joints
that hit the cap are returned with the people (`Decoded.capped`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

from bodypose_exporter.evaluation.connections import connect
from bodypose_exporter.evaluation.grouping import Person, group
from bodypose_exporter.evaluation.peaks import MAX_CANDIDATES_PER_JOINT, find_peaks
from bodypose_exporter.evaluation.preprocess import Letterbox
from bodypose_exporter.evaluation.skeleton import topology
from bodypose_exporter.output_agreement import HEATMAP_THRESHOLD

STRIDE = 8


@dataclass(frozen=True)
class DecodeOptions:
    stride: int = STRIDE  # TAO's output_upsampling_factor: upsample by the model's stride
    heatmap_threshold: float = HEATMAP_THRESHOLD
    max_candidates: int = MAX_CANDIDATES_PER_JOINT  # per joint (`peaks`)


@dataclass(frozen=True)
class Decoded:
    """One image's people, and the joints whose candidates were capped (joint -> count found)."""

    people: list[Person]
    capped: dict[int, int] = field(default_factory=dict)


def upsample(blob: npt.NDArray[np.float32], factor: int) -> npt.NDArray[np.float32]:
    """Resize an (h, w, c) output by `factor` with INTER_CUBIC, as TAO does (all channels)."""
    if factor == 1:
        return blob
    resized = cv2.resize(blob, (0, 0), fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
    return np.asarray(resized, dtype=np.float32)


def decode(
    heatmap: npt.NDArray[np.float32],
    paf: npt.NDArray[np.float32],
    geometry: Letterbox | None = None,
    options: DecodeOptions | None = None,
) -> Decoded:
    """People in one image from its (h, w, 19) heatmap and (h', w', 38) PAF.

    A PAF already at a finer resolution than the heatmap (the SDK-compatible
    model's, upsampled in the network) is resized to the heatmap's.
    """
    opts = options or DecodeOptions()
    heat = upsample(heatmap, opts.stride)
    factor = heat.shape[0] // paf.shape[0]
    fields = upsample(paf, factor)
    candidates = find_peaks(heat, opts.heatmap_threshold, opts.max_candidates)
    peaks = candidates.peaks
    topo = topology()
    connections = [
        connect(peaks[int(a)], peaks[int(b)], fields[:, :, [int(px), int(py)]])
        for px, py, a, b in topo
    ]
    people = group(connections, peaks, topo)
    if geometry is not None:
        people = [
            Person(tuple(None if j is None else geometry.to_image(*j) for j in p.joints), p.score)
            for p in people
        ]
    return Decoded(people, candidates.capped)
