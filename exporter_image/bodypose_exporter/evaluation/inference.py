"""Run a model over a COCO keypoint set's images and score it: the offline evaluation path.

Each image is preprocessed as TAO does for engines (`preprocess.letterbox`:
pad to the network's aspect ratio, resize, normalize), run one at a time
through an engine runner (`engines.EngineRunner`: the FP32 ONNX model in ONNX
Runtime, or a built artifact), decoded bottom-up (`decode`), mapped back to
the image and scored with pycocotools (`coco`). TAO's own sanity check of
exported engines is the same: evaluate in this strict mode, FP32 and engine
side by side (NVIDIA/tao_tutorials `bpnet.ipynb`, section 10.3).

An image whose heatmaps give some joint more candidates than the decoder
keeps (`peaks.MAX_CANDIDATES_PER_JOINT`) is counted, logged with the joints
and carried into the figures (`ApFigures.peak_candidates_capped` and a
note): those figures are a broken model's, and the AP gate refuses them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bodypose_exporter.engines.base import EngineRunner
from bodypose_exporter.evaluation.ap_figures import ApFigures
from bodypose_exporter.evaluation.coco import keypoint_ap, to_results
from bodypose_exporter.evaluation.dataset import EvaluationSet, EvaluationSetError
from bodypose_exporter.evaluation.decode import DecodeOptions, decode
from bodypose_exporter.evaluation.peaks import MAX_CANDIDATES_PER_JOINT
from bodypose_exporter.evaluation.preprocess import letterbox, read_image
from bodypose_exporter.evaluation.skeleton import BPNET_JOINTS
from bodypose_exporter.output_agreement import output_roles as roles

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Detections:
    results: list[dict[str, Any]]  # COCO keypoint results, every image
    people: int  # people found
    capped_images: int  # images on which some joint hit the candidate cap


def capped_note(capped_images: int, images: int, cap: int = MAX_CANDIDATES_PER_JOINT) -> str:
    return (
        f"the decoder kept at most {cap} heatmap peak candidates per joint and hit that cap "
        f"on {capped_images} of {images} images: heatmaps that flat or noisy come from a "
        "broken model or engine, so these figures are a broken one's"
    )


def detect(
    runner: EngineRunner,
    dataset: dict[str, Any],
    images_dir: Path,
    height: int,
    width: int,
    options: DecodeOptions | None = None,
) -> Detections:
    """COCO keypoint results for every image of `dataset`, people found, images capped."""
    results: list[dict[str, Any]] = []
    people = 0
    capped_images = 0
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
        if found.capped:
            capped_images += 1
            # The first capped image at warning level, the others at debug: a broken
            # engine caps every image, and one line says what the summary counts.
            log.log(
                logging.WARNING if capped_images == 1 else logging.DEBUG,
                "%s: more peak candidates than the decoder keeps (%d per joint) for %s",
                image["file_name"],
                (options or DecodeOptions()).max_candidates,
                ", ".join(f"{BPNET_JOINTS[j]} ({n})" for j, n in sorted(found.capped.items())),
            )
        people += len(found.people)
        results += to_results(int(image["id"]), found.people)
    return Detections(results, people, capped_images)


def evaluate_set(
    runner: EngineRunner,
    evaluation_set: EvaluationSet,
    height: int,
    width: int,
    options: DecodeOptions | None = None,
) -> ApFigures:
    """OKS keypoint AP of `runner` (network input `height` x `width`) on the set."""
    found = detect(
        runner, evaluation_set.dataset, evaluation_set.images_dir, height, width, options
    )
    stats = keypoint_ap(evaluation_set.dataset, found.results)
    notes = evaluation_set.notes
    if found.capped_images:
        cap = (options or DecodeOptions()).max_candidates
        notes += (capped_note(found.capped_images, evaluation_set.image_count, cap),)
        log.warning("%s", notes[-1])
    figures = ApFigures.from_stats(
        stats,
        images=evaluation_set.image_count,
        requested_images=evaluation_set.requested_images,
        annotated_people=evaluation_set.people,
        found_people=found.people,
        peak_candidates_capped=found.capped_images,
        notes=notes,
    )
    log.info(
        "AP %.4f on %d images (%d people annotated, %d found, %d capped)",
        figures.ap,
        figures.images,
        figures.annotated_people,
        found.people,
        found.capped_images,
    )
    return figures
