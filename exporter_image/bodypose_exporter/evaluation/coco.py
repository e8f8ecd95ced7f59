"""People as COCO keypoint results, and OKS keypoint AP with pycocotools.

Conversion as TAO's `COCODataset.dump_detection_in_coco_format`
(NVIDIA/tao_tensorflow1_backend `nvidia_tao_tf1/cv/bpnet/dataio/
coco_dataset.py`): BpNet's 18 joints mapped to COCO's 17 by name (the neck
has no COCO counterpart), coordinates truncated to integers, visibility 1
for a found joint and 0 (with x = y = 0) for a missing one, category 1, and
the person's confidence as the score. Evaluation as TAO's
`COCODataset.evaluate`: `COCOeval(gt, dt, "keypoints")`, evaluate,
accumulate, summarize; the ten summary figures keep TAO's names.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable
from typing import Any

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from bodypose_exporter.evaluation.grouping import Person
from bodypose_exporter.evaluation.skeleton import COCO_KEYPOINTS, coco_index_of_bpnet

STAT_NAMES = (
    "AP_0.50:0.95_all",
    "AP_0.5",
    "AP_0.75",
    "AP_0.50:0.95_medium",
    "AP_0.50:0.95_large",
    "AR_0.50:0.95_all",
    "AR_0.5",
    "AR_0.75",
    "AR_0.50:0.95_medium",
    "AR_0.50:0.95_large",
)


def to_results(image_id: int, people: Iterable[Person]) -> list[dict[str, Any]]:
    mapping = coco_index_of_bpnet()
    results = []
    for person in people:
        keypoints = [0] * (3 * len(COCO_KEYPOINTS))
        for joint, coco in mapping.items():
            xy = person.joints[joint]
            if xy is None:
                continue
            x, y = int(xy[0]), int(xy[1])
            keypoints[3 * coco : 3 * coco + 3] = [x, y, 1 if x > 0 or y > 0 else 0]
        results.append(
            {"image_id": image_id, "category_id": 1, "keypoints": keypoints, "score": person.score}
        )
    return results


def ground_truth(dataset: dict[str, Any]) -> Any:
    """A pycocotools COCO object from an annotation dict (quietly)."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = dataset
        coco.createIndex()
    return coco


def keypoint_ap(dataset: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, float]:
    """OKS keypoint AP/AR (TAO's ten figures) of `results` against the annotations."""
    if not results:
        return dict.fromkeys(STAT_NAMES, 0.0)
    gt = ground_truth(dataset)
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(results)
        evaluation = COCOeval(gt, dt, "keypoints")
        evaluation.params.imgIds = sorted(gt.getImgIds())
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return {name: float(value) for name, value in zip(STAT_NAMES, evaluation.stats, strict=True)}
