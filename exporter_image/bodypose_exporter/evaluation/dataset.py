"""An evaluation set checked before any inference: COCO person keypoints, images that exist.

What COCO person-keypoints annotations are (cocodataset.org #format-data,
and what pycocotools' `COCOeval(gt, dt, "keypoints")` reads): `images`,
`annotations` and `categories`; a category with a `keypoints` list of
COCO's 17 joint names; each annotation's `keypoints` 17 [x, y, v] triples
and an `area` (OKS's scale). TAO's bpnet evaluation (`COCODataset` in
NVIDIA/tao_tensorflow1_backend `nvidia_tao_tf1/cv/bpnet/dataio/
coco_dataset.py`) maps BodyPoseNet's 18 joints to exactly those 17 by name,
so any other joint set cannot be scored and is refused here, with what was
found, instead of failing deep inside pycocotools.

`maxImages` takes the first images by id (the same ones on every run, every
target); when it asks for more than the set holds, all are used and a note
says so (`EvaluationSet.notes`, logged and carried into the figures).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bodypose_exporter.errors import UserError
from bodypose_exporter.evaluation.skeleton import COCO_KEYPOINTS

log = logging.getLogger(__name__)

#: How many missing file names a message lists before "and N more".
_SHOWN = 5


class EvaluationSetError(UserError):
    """The evaluation set cannot be used as it is; the message says what to change."""

    reason = "InvalidEvaluationSet"


@dataclass(frozen=True)
class EvaluationSet:
    dataset: dict[str, Any]  # COCO annotations, restricted to the images used
    images_dir: Path  # where the images' file_name values are found
    annotations_source: str  # as the user named it (path or s3:// URI)
    images_source: str
    requested_images: int | None = None
    notes: tuple[str, ...] = ()

    @property
    def image_count(self) -> int:
        return len(self.dataset["images"])

    @property
    def people(self) -> int:
        return len(self.dataset["annotations"])


def parse_annotations(text: str, source: str) -> dict[str, Any]:
    """COCO JSON text -> dict, refusing what is not COCO person keypoints (naming `source`)."""
    try:
        dataset = json.loads(text)
    except ValueError as exc:
        raise EvaluationSetError(f"annotations {source} are not JSON: {exc}") from exc
    if not isinstance(dataset, dict):
        raise EvaluationSetError(f"annotations {source}: a COCO file is a JSON object")
    missing = [k for k in ("images", "annotations", "categories") if k not in dataset]
    if missing:
        raise EvaluationSetError(
            f"annotations {source} lack {', '.join(missing)}: not a COCO annotation file"
        )
    check_keypoints(dataset, source)
    return dataset


def check_keypoints(dataset: dict[str, Any], source: str) -> None:
    with_keypoints = [c for c in dataset["categories"] if c.get("keypoints")]
    if not with_keypoints:
        names = ", ".join(repr(c.get("name")) for c in dataset["categories"][:5]) or "none"
        raise EvaluationSetError(
            f"annotations {source} have no category with 'keypoints' (categories: {names}): "
            "they are not COCO person keypoints (a detection or captions file?); use "
            "person_keypoints_*.json"
        )
    category = with_keypoints[0]
    joints = list(category["keypoints"])
    if len(joints) != len(COCO_KEYPOINTS):
        raise EvaluationSetError(
            f"annotations {source}: category {category.get('name')!r} has {len(joints)} "
            f"keypoints, BodyPoseNet is scored on COCO's {len(COCO_KEYPOINTS)} "
            f"({', '.join(COCO_KEYPOINTS)})"
        )
    unknown = sorted(set(joints) - set(COCO_KEYPOINTS))
    if unknown:
        raise EvaluationSetError(
            f"annotations {source}: keypoints {unknown} are not COCO's; BodyPoseNet's joints "
            "are matched to COCO's by name"
        )
    for ann in dataset["annotations"]:
        if ann.get("category_id") != category["id"]:
            continue
        values = len(ann.get("keypoints") or ())
        if values != 3 * len(COCO_KEYPOINTS):
            raise EvaluationSetError(
                f"annotations {source}: annotation {ann.get('id')} has {values} keypoint values, "
                f"COCO person keypoints have {3 * len(COCO_KEYPOINTS)} "
                f"({len(COCO_KEYPOINTS)} joints x [x, y, visibility])"
            )


def select(
    dataset: dict[str, Any], source: str, max_images: int | None
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The first `max_images` images by id and their annotations; notes for the user."""
    images = sorted(dataset["images"], key=lambda image: image["id"])
    if not images:
        raise EvaluationSetError(f"annotations {source} list no images: nothing to evaluate")
    known = {image["id"] for image in images}
    orphans = sorted({a["image_id"] for a in dataset["annotations"]} - known)
    if orphans:
        raise EvaluationSetError(
            f"annotations {source}: image ids {orphans[:_SHOWN]} of the annotations match no "
            "entry in 'images' (so no file)"
        )
    notes: list[str] = []
    if max_images is not None:
        if max_images < 1:
            raise EvaluationSetError(f"maxImages must be at least 1, got {max_images}")
        if max_images > len(images):
            notes.append(
                f"maxImages {max_images} is more than the {len(images)} images in {source}: "
                f"evaluated all {len(images)}"
            )
            log.warning("%s", notes[-1])
        images = images[:max_images]
    used = {image["id"] for image in images}
    chosen = {
        **dataset,
        "images": images,
        "annotations": [a for a in dataset["annotations"] if a["image_id"] in used],
    }
    if not any(a.get("num_keypoints", 1) > 0 for a in chosen["annotations"]):
        raise EvaluationSetError(
            f"annotations {source}: the {len(images)} images evaluated have no annotated "
            "people, so AP is undefined; use images with people in them"
        )
    return chosen, tuple(notes)


def missing_files(images: list[dict[str, Any]], available: set[str]) -> list[str]:
    return [image["file_name"] for image in images if image["file_name"] not in available]


def refuse_missing(missing: list[str], total: int, images_source: str) -> None:
    if not missing:
        return
    shown = ", ".join(missing[:_SHOWN]) + (
        f" and {len(missing) - _SHOWN} more" if len(missing) > _SHOWN else ""
    )
    raise EvaluationSetError(
        f"{len(missing)} of the {total} images the annotations name are not in {images_source}: "
        f"{shown} (each image's file_name is looked up relative to the images location)"
    )
