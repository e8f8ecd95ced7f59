"""Ground-truth heatmaps and part affinity fields, as TAO's bpnet dataloader makes them.

Followed: NVIDIA/tao_tensorflow1_backend `nvidia_tao_tf1/cv/bpnet/dataloaders/
processors/label_processor.py` (`LabelProcessor`) with the default
experiment spec's `label_processor_config` (`heatmap_gaussian_sigma: 7.0`,
`paf_ortho_dist_thresh: 1.0`; `experiment_specs/experiment_spec.yaml`), at
the network's output stride:

- heatmaps: per joint, a Gaussian of sigma 7 input pixels around the joint,
  sampled at the centre of each output cell (`cell * stride + (stride - 1) / 2`),
  the maximum over people, values under 0.001 set to 0; the background
  channel is `clip(1 - max over joints, 0, 1)`;
- PAFs: per skeleton edge, the limb's unit vector (x in channel 2k, y in
  2k + 1) on the cells whose top-left input pixel (`cell * stride`, as TAO's
  `mgrid`) lies within `1.0 * stride` pixels of the limb's line, inside the
  limb's bounding box grown by that distance.

One deliberate difference: TAO assigns the unit vector over the whole box
(`paf[roi] = unit * filter`), which also zeroes another person's field where
two boxes overlap (its own TODO notes the field is not averaged); here the
vector is written only where the filter is 1, so neighbours keep theirs.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from bodypose_exporter.evaluation.skeleton import HEATMAP_CHANNELS, PAF_CHANNELS, topology

HEATMAP_SIGMA = 7.0
PAF_ORTHO_DISTANCE = 1.0  # in strides
HEATMAP_FLOOR = 0.001

Array = npt.NDArray[np.float32]


def heatmaps(people: list[Array], height: int, width: int, stride: int) -> Array:
    """(height / stride, width / stride, 19): the joints' Gaussians and the background."""
    gh, gw = height // stride, width // stride
    xs = np.arange(gw, dtype=np.float64) * stride + (stride - 1) / 2
    ys = np.arange(gh, dtype=np.float64) * stride + (stride - 1) / 2
    factor = 1.0 / (2.0 * HEATMAP_SIGMA**2)
    out = np.zeros((gh, gw, HEATMAP_CHANNELS), np.float64)
    for joints in people:
        for j, (x, y) in enumerate(joints):
            blob = np.outer(np.exp(-((ys - y) ** 2) * factor), np.exp(-((xs - x) ** 2) * factor))
            out[:, :, j] = np.maximum(out[:, :, j], blob)
    out[:, :, :-1][out[:, :, :-1] < HEATMAP_FLOOR] = 0.0
    out[:, :, -1] = np.clip(1.0 - out[:, :, :-1].max(axis=-1), 0.0, 1.0)
    return out.astype(np.float32)


def part_affinity_fields(people: list[Array], height: int, width: int, stride: int) -> Array:
    """(height / stride, width / stride, 38): each limb's unit vector near the limb."""
    gh, gw = height // stride, width // stride
    grid_y, grid_x = np.mgrid[0:height:stride, 0:width:stride].astype(np.float64)
    grid_y, grid_x = grid_y[:gh, :gw], grid_x[:gh, :gw]
    limit = PAF_ORTHO_DISTANCE * stride
    out = np.zeros((gh, gw, PAF_CHANNELS), np.float64)
    for joints in people:
        for px, py, a, b in topology():
            (sx, sy), (ex, ey) = (float(v) for v in joints[a]), (float(v) for v in joints[b])
            vx, vy = ex - sx, ey - sy
            length = float(np.hypot(vx, vy))
            if length == 0.0:
                continue
            x0 = max(0, round((min(sx, ex) - limit) / stride))
            y0 = max(0, round((min(sy, ey) - limit) / stride))
            x1 = min(gw, round((max(sx, ex) + limit) / stride))
            y1 = min(gh, round((max(sy, ey) + limit) / stride))
            if x1 <= x0 or y1 <= y0:
                continue
            roi_x, roi_y = grid_x[y0:y1, x0:x1], grid_y[y0:y1, x0:x1]
            distance = np.abs(((sy - roi_y) * vx - (sx - roi_x) * vy) / length)
            on = distance <= limit
            out[y0:y1, x0:x1, px] = np.where(on, vx / length, out[y0:y1, x0:x1, px])
            out[y0:y1, x0:x1, py] = np.where(on, vy / length, out[y0:y1, x0:x1, py])
    return out.astype(np.float32)
