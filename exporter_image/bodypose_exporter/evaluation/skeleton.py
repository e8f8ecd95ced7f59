"""BodyPoseNet's 18-joint COCO skeleton, its topology, and the mapping to COCO's 17 keypoints.

From NVIDIA/tao_tensorflow1_backend
`nvidia_tao_tf1/cv/bpnet/dataloaders/pose_configurations/bpnet_18joints.json`
(joint names, 1-based `skeleton` edges in PAF order) and `pose_config.py`
(`pose_config_to_topology`: edge k reads PAF channels 2k (x) and 2k+1 (y)
and joins joint skeleton[k][0]-1 to skeleton[k][1]-1; the heatmap has the
18 joints then a background channel). COCO's keypoint order is the
`person_keypoints` category's; `neck` has no COCO counterpart and is dropped
when results are converted, by name, as TAO's `COCODataset.convert_kpts_format`
does.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

BPNET_JOINTS = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist",
    "left_shoulder", "left_elbow", "left_wrist", "right_hip", "right_knee",
    "right_ankle", "left_hip", "left_knee", "left_ankle", "right_eye",
    "left_eye", "right_ear", "left_ear",
)  # fmt: skip
#: 1-based joint pairs, in PAF channel order.
BPNET_SKELETON = (
    (2, 9), (9, 10), (10, 11), (2, 12), (12, 13), (13, 14), (2, 3), (3, 4), (4, 5), (3, 17),
    (2, 6), (6, 7), (7, 8), (6, 18), (2, 1), (1, 15), (1, 16), (15, 17), (16, 18),
)  # fmt: skip
COCO_KEYPOINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
NUM_JOINTS = len(BPNET_JOINTS)
HEATMAP_CHANNELS = NUM_JOINTS + 1  # + background
PAF_CHANNELS = 2 * len(BPNET_SKELETON)


def topology() -> npt.NDArray[np.int64]:
    """(edges, 4): PAF x channel, PAF y channel, start joint, end joint (0-based)."""
    return np.array(
        [(2 * k, 2 * k + 1, a - 1, b - 1) for k, (a, b) in enumerate(BPNET_SKELETON)],
        dtype=np.int64,
    )


def coco_index_of_bpnet() -> dict[int, int]:
    """BpNet joint index -> COCO keypoint index, for the 17 joints COCO has."""
    coco = {name: i for i, name in enumerate(COCO_KEYPOINTS)}
    return {i: coco[name] for i, name in enumerate(BPNET_JOINTS) if name in coco}
