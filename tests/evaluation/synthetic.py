"""Hand-made people and the network outputs a perfect BodyPoseNet would give for them.

Heatmaps: one Gaussian per joint (sigma one heatmap cell), background channel
1 - max; PAFs: the limb's unit vector on the cells within one cell of the
limb. Both at stride 8, centred so that TAO's x8 cubic upsampling puts each
peak on the joint's pixel (a stride-8 cell i covers input pixels 8i..8i+7,
centre 8i + 3.5).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from bodypose_exporter.evaluation.skeleton import (
    BPNET_JOINTS,
    COCO_KEYPOINTS,
    HEATMAP_CHANNELS,
    PAF_CHANNELS,
    topology,
)

STRIDE = 8
# One upright person in a unit box (x right, y down), by BpNet joint name.
_POSE = {
    "nose": (0.50, 0.10), "neck": (0.50, 0.22), "right_shoulder": (0.32, 0.24),
    "right_elbow": (0.24, 0.40), "right_wrist": (0.20, 0.55), "left_shoulder": (0.68, 0.24),
    "left_elbow": (0.76, 0.40), "left_wrist": (0.80, 0.55), "right_hip": (0.40, 0.58),
    "right_knee": (0.38, 0.77), "right_ankle": (0.37, 0.95), "left_hip": (0.60, 0.58),
    "left_knee": (0.62, 0.77), "left_ankle": (0.63, 0.95), "right_eye": (0.46, 0.07),
    "left_eye": (0.54, 0.07), "right_ear": (0.41, 0.09), "left_ear": (0.59, 0.09),
}  # fmt: skip

Array = npt.NDArray[np.float32]


def person(x: float, y: float, w: float, h: float) -> Array:
    """(18, 2) joint pixels of a person whose box has its top-left at (x, y)."""
    return np.array([(x + w * _POSE[j][0], y + h * _POSE[j][1]) for j in BPNET_JOINTS], np.float32)


def outputs(people: list[Array], height: int, width: int) -> tuple[Array, Array]:
    gh, gw = height // STRIDE, width // STRIDE
    cy, cx = np.mgrid[0:gh, 0:gw].astype(np.float32) * STRIDE + (STRIDE - 1) / 2
    heat = np.zeros((gh, gw, HEATMAP_CHANNELS), np.float32)
    paf = np.zeros((gh, gw, PAF_CHANNELS), np.float32)
    count = np.zeros((gh, gw, PAF_CHANNELS // 2), np.float32)
    sigma = float(STRIDE)
    for joints in people:
        for j, (x, y) in enumerate(joints):
            g = np.exp(-((cx - x) ** 2 + (cy - y) ** 2) / (2 * sigma**2))
            heat[:, :, j] = np.maximum(heat[:, :, j], g)
        for k, (px, py, a, b) in enumerate(topology()):
            start, end = joints[a], joints[b]
            vec = end - start
            length = float(np.linalg.norm(vec))
            unit = vec / length
            rx, ry = cx - start[0], cy - start[1]
            along = rx * unit[0] + ry * unit[1]
            across = np.abs(rx * unit[1] - ry * unit[0])
            on = (along >= -STRIDE) & (along <= length + STRIDE) & (across <= STRIDE)
            paf[:, :, px] += on * unit[0]
            paf[:, :, py] += on * unit[1]
            count[:, :, k] += on
    heat[:, :, -1] = 1.0 - heat[:, :, :-1].max(axis=-1)
    divisor = np.repeat(np.maximum(count, 1.0), 2, axis=-1)
    return heat, paf / divisor


def coco_dataset(people: list[Array], height: int, width: int) -> dict[str, object]:
    """A one-image COCO keypoint annotation set for `people` (all 17 COCO joints visible)."""
    index = {name: i for i, name in enumerate(BPNET_JOINTS)}
    annotations = []
    for n, joints in enumerate(people):
        keypoints: list[float] = []
        for name in COCO_KEYPOINTS:
            x, y = joints[index[name]]
            keypoints += [float(x), float(y), 2]
        x0, y0 = joints.min(axis=0) - 10
        x1, y1 = joints.max(axis=0) + 10
        annotations.append(
            {
                "id": n + 1,
                "image_id": 1,
                "category_id": 1,
                "iscrowd": 0,
                "num_keypoints": 17,
                "keypoints": keypoints,
                "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                "area": float((x1 - x0) * (y1 - y0)),
            }
        )
    return {
        "images": [{"id": 1, "file_name": "synthetic.png", "height": height, "width": width}],
        "annotations": annotations,
        "categories": [{"id": 1, "name": "person", "supercategory": "person",
                        "keypoints": list(COCO_KEYPOINTS), "skeleton": []}],
    }  # fmt: skip
