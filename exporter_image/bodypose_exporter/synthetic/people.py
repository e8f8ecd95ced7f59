"""Drawn people with known joints: images and their COCO person-keypoints annotations.

A person is BodyPoseNet's 18 joints (`evaluation.skeleton`) placed from an
upright, camera-facing pose with seeded variation (arms and legs swing on
their own side, head and shoulders jitter); the figure is drawn as a
skeleton the way OpenPose renders one: each limb a thick line of its own
colour, each joint a dot of its own colour, so that a small network can tell
joints apart in minutes of training. People stand in separate columns of
the image, wholly inside it, on a low-saturation textured background (so
that no joint colour appears by chance).

Annotations follow COCO's person-keypoints format (cocodataset.org
#format-data; pycocotools `COCO`, `COCOeval(..., "keypoints")`): 17
keypoints in the category's order (BpNet's neck has no COCO counterpart),
`[x, y, v]` with v = 2 (labelled and visible: every joint is drawn), the
bounding box of the joints padded by a tenth of the person's height, and
`area` = the box's area, which COCO's OKS uses as the person's scale (COCO
takes a segmentation's area; a drawn skeleton has none, and the box is the
honest stand-in; it only sets how lenient OKS is).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from bodypose_exporter.evaluation.skeleton import BPNET_JOINTS, BPNET_SKELETON, COCO_KEYPOINTS

Joints = npt.NDArray[np.float32]  # (18, 2) x, y in image pixels

#: An upright person in a unit box (x right, y down, the person faces the camera, so
#: their right side is on the image's left), by BpNet joint name.
_BASE_POSE = {
    "nose": (0.50, 0.09), "neck": (0.50, 0.20), "right_shoulder": (0.30, 0.22),
    "right_elbow": (0.22, 0.38), "right_wrist": (0.18, 0.53), "left_shoulder": (0.70, 0.22),
    "left_elbow": (0.78, 0.38), "left_wrist": (0.82, 0.53), "right_hip": (0.39, 0.56),
    "right_knee": (0.37, 0.76), "right_ankle": (0.36, 0.96), "left_hip": (0.61, 0.56),
    "left_knee": (0.63, 0.76), "left_ankle": (0.64, 0.96), "right_eye": (0.46, 0.06),
    "left_eye": (0.54, 0.06), "right_ear": (0.41, 0.08), "left_ear": (0.59, 0.08),
}  # fmt: skip
#: Width of a person's box relative to its height.
ASPECT = 0.5
#: COCO's person skeleton (1-based, over COCO_KEYPOINTS), written into the category.
COCO_SKELETON = (
    (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8),
    (7, 9), (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7),
)  # fmt: skip
#: The shoulder-ear edges of BpNet's skeleton join joints no drawn line joins.
_HIDDEN_EDGES = {(3, 17), (6, 18)}


@dataclass(frozen=True)
class SetSpec:
    """How a set of drawn images is made (all of it goes into the sample cache's key)."""

    height: int = 192
    width: int = 256
    people: tuple[int, int] = (1, 3)  # fewest and most people per image
    person_height: tuple[float, float] = (0.45, 0.9)  # of the image height


def _hues(n: int, offset: float) -> list[tuple[int, int, int]]:
    """`n` saturated BGR colours spread around the hue circle."""
    colours = []
    for i in range(n):
        hsv = np.array([[[int((offset + i / n) * 180) % 180, 255, 255]]], np.uint8)
        b, g, r = (int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])
        colours.append((b, g, r))
    return colours


LIMB_COLOURS = _hues(len(BPNET_SKELETON), 0.0)
JOINT_COLOURS = _hues(len(BPNET_JOINTS), 0.5 / len(BPNET_JOINTS))


def pose(rng: np.random.Generator, x: float, y: float, height: float) -> Joints:
    """An 18-joint person whose box (height `height`, width ASPECT x height) starts at (x, y)."""
    unit = {name: np.array(xy, np.float64) for name, xy in _BASE_POSE.items()}
    head = rng.normal(0.0, 0.015, 2)
    for name in ("nose", "right_eye", "left_eye", "right_ear", "left_ear"):
        unit[name] = unit[name] + head
    for side, sign in (("right", -1.0), ("left", 1.0)):
        # Arms: the elbow and wrist swing outwards or down on their own side.
        shoulder = unit[f"{side}_shoulder"]
        upper = rng.uniform(0.15, 0.19)
        angle = np.deg2rad(rng.uniform(10, 80))  # from straight down, outwards
        elbow = shoulder + upper * np.array([sign * np.sin(angle), np.cos(angle)])
        bend = angle + np.deg2rad(rng.uniform(-30, 60))
        wrist = elbow + upper * np.array([sign * np.sin(bend), np.cos(bend)])
        unit[f"{side}_elbow"], unit[f"{side}_wrist"] = elbow, wrist
        # Legs: a small stride.
        hip = unit[f"{side}_hip"]
        step = np.deg2rad(rng.uniform(-5, 20))
        knee = hip + 0.2 * np.array([sign * np.sin(step), np.cos(step)])
        ankle = knee + 0.2 * np.array([sign * np.sin(step * 0.5), np.cos(step * 0.5)])
        unit[f"{side}_knee"], unit[f"{side}_ankle"] = knee, ankle
    width = ASPECT * height
    return np.array(
        [(x + width * unit[j][0], y + height * unit[j][1]) for j in BPNET_JOINTS], np.float32
    )


def background(rng: np.random.Generator, height: int, width: int) -> npt.NDArray[np.uint8]:
    """Grey-ish smooth texture plus noise: no saturated colour a joint could be taken for."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    level = rng.uniform(60, 190)
    wave = 35 * np.sin(xx / rng.uniform(15, 60) + yy / rng.uniform(15, 60) + rng.uniform(0, 6))
    tint = rng.uniform(-12, 12, 3)
    img = level + wave[..., None] + tint + rng.normal(0, 6, (height, width, 3))
    out: npt.NDArray[np.uint8] = np.clip(img, 0, 255).astype(np.uint8)
    return out


def draw(img: npt.NDArray[np.uint8], joints: Joints, height: float) -> None:
    """The skeleton, OpenPose-style: coloured limbs, then coloured joint dots on top."""
    thick = max(2, round(height / 28))
    radius = max(2, round(height / 40))
    for k, (a, b) in enumerate(BPNET_SKELETON):
        if (a, b) in _HIDDEN_EDGES:
            continue
        start = (round(float(joints[a - 1][0])), round(float(joints[a - 1][1])))
        end = (round(float(joints[b - 1][0])), round(float(joints[b - 1][1])))
        cv2.line(img, start, end, LIMB_COLOURS[k], thick, cv2.LINE_AA)
    for j, (x, y) in enumerate(joints):
        cv2.circle(
            img, (round(float(x)), round(float(y))), radius, JOINT_COLOURS[j], -1, cv2.LINE_AA
        )


def image(
    rng: np.random.Generator, spec: SetSpec
) -> tuple[npt.NDArray[np.uint8], list[tuple[Joints, float]]]:
    """One drawn image and its people (joints, person height)."""
    img = background(rng, spec.height, spec.width)
    count = int(rng.integers(spec.people[0], spec.people[1] + 1))
    column = spec.width / count
    people = []
    for i in range(count):
        height = rng.uniform(*spec.person_height) * spec.height
        height = min(height, column / (ASPECT * 1.15))  # the person fits in its column
        margin = 0.04 * height
        x = i * column + rng.uniform(margin, max(margin, column - ASPECT * height - margin))
        y = rng.uniform(margin, max(margin, spec.height - height - margin))
        joints = pose(rng, x, y, height)
        draw(img, joints, height)
        people.append((joints, height))
    return img, people


def coco_annotation(joints: Joints, height: float, image_id: int, ann_id: int) -> dict[str, Any]:
    index = {name: i for i, name in enumerate(BPNET_JOINTS)}
    keypoints: list[float] = []
    for name in COCO_KEYPOINTS:
        x, y = joints[index[name]]
        keypoints += [round(float(x), 2), round(float(y), 2), 2]
    pad = 0.1 * height
    x0, y0 = joints.min(axis=0) - pad
    x1, y1 = joints.max(axis=0) + pad
    w, h = float(x1 - x0), float(y1 - y0)
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": 1,
        "iscrowd": 0,
        "num_keypoints": len(COCO_KEYPOINTS),
        "keypoints": keypoints,
        "bbox": [round(float(x0), 2), round(float(y0), 2), round(w, 2), round(h, 2)],
        "area": round(w * h, 2),
    }


def category() -> dict[str, Any]:
    return {
        "id": 1,
        "name": "person",
        "supercategory": "person",
        "keypoints": list(COCO_KEYPOINTS),
        "skeleton": [list(edge) for edge in COCO_SKELETON],
    }


def write_set(
    directory: Path, count: int, seed: int, spec: SetSpec | None = None
) -> tuple[Path, Path]:
    """`count` drawn images under `directory`/images and `directory`/person_keypoints.json."""
    spec = spec or SetSpec()
    rng = np.random.default_rng(seed)
    images_dir = directory / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for i in range(count):
        img, people = image(rng, spec)
        name = f"person_{i:04d}.jpg"
        cv2.imwrite(str(images_dir / name), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
        images.append({"id": i + 1, "file_name": name, "height": spec.height, "width": spec.width})
        for joints, height in people:
            annotations.append(coco_annotation(joints, height, i + 1, len(annotations) + 1))
    path = directory / "person_keypoints.json"
    dataset = {"images": images, "annotations": annotations, "categories": [category()]}
    path.write_text(json.dumps(dataset))
    return images_dir, path
