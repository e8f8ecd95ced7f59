"""Run a model over a COCO keypoint set's images and score it: the offline evaluation path.

Each image is preprocessed as TAO does for engines (`preprocess.letterbox`:
pad to the network's aspect ratio, resize, normalize), run one at a time
through an engine runner (`engines.EngineRunner`: the FP32 ONNX model in ONNX
Runtime, or a built artifact), decoded bottom-up (`decode`), mapped back to
the image and scored with pycocotools (`coco`). TAO's own sanity check of
exported engines is the same: evaluate in this strict mode, FP32 and engine
side by side (NVIDIA/tao_tutorials `bpnet.ipynb`, section 10.3).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from bodypose_exporter.engines.base import EngineRunner
from bodypose_exporter.evaluation.coco import keypoint_ap, to_results
from bodypose_exporter.evaluation.dataset import EvaluationSet, EvaluationSetError
from bodypose_exporter.evaluation.decode import DecodeOptions, decode
from bodypose_exporter.evaluation.figures import ApFigures
from bodypose_exporter.evaluation.preprocess import letterbox, read_image
from bodypose_exporter.metrics import output_roles as roles

log = logging.getLogger(__name__)


def detect(
    runner: EngineRunner,
    dataset: dict[str, Any],
    images_dir: Path,
    height: int,
    width: int,
    options: DecodeOptions | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """COCO keypoint results for every image of `dataset`, and how many people were found."""
    results: list[dict[str, Any]] = []
    people = 0
    for image in dataset["images"]:
        path = images_dir / image["file_name"]
        try:
            bgr = read_image(path)
        except (OSError, ValueError) as exc:
            raise EvaluationSetError(f"evaluation image {image['file_name']}: {exc}") from exc
        network_input, geometry = letterbox(bgr, height, width)
        outputs = runner.run(network_input[None])
        names = roles(outputs)
        found = decode(outputs[names["heatmap"]][0], outputs[names["paf"]][0], geometry, options)
        people += len(found)
        results += to_results(int(image["id"]), found)
    return results, people


def evaluate_set(
    runner: EngineRunner,
    evaluation_set: EvaluationSet,
    height: int,
    width: int,
    options: DecodeOptions | None = None,
) -> ApFigures:
    """OKS keypoint AP of `runner` (network input `height` x `width`) on the set."""
    results, found = detect(
        runner, evaluation_set.dataset, evaluation_set.images_dir, height, width, options
    )
    stats = keypoint_ap(evaluation_set.dataset, results)
    figures = ApFigures.from_stats(
        stats,
        images=evaluation_set.image_count,
        requested_images=evaluation_set.requested_images,
        annotated_people=evaluation_set.people,
        found_people=found,
        notes=evaluation_set.notes,
    )
    log.info(
        "AP %.4f on %d images (%d people annotated, %d found)",
        figures.ap,
        figures.images,
        figures.annotated_people,
        found,
    )
    return figures
