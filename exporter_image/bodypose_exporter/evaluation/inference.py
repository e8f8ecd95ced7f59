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

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bodypose_exporter.engines.base import EngineRunner
from bodypose_exporter.errors import UserError
from bodypose_exporter.evaluation.coco import keypoint_ap, to_results
from bodypose_exporter.evaluation.decode import DecodeOptions, decode
from bodypose_exporter.evaluation.preprocess import letterbox, read_image
from bodypose_exporter.metrics import output_roles as roles


@dataclass(frozen=True)
class Evaluation:
    figures: dict[str, float]
    images: int
    people: int
    results: list[dict[str, Any]]


def load_annotations(path: Path) -> dict[str, Any]:
    try:
        dataset: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"--annotations {path} is not a readable COCO JSON file: {exc}") from exc
    if not {"images", "annotations", "categories"} <= dataset.keys():
        raise UserError(f"--annotations {path} lacks images, annotations or categories")
    return dataset


def evaluate(
    runner: EngineRunner,
    dataset: dict[str, Any],
    images_dir: Path,
    height: int,
    width: int,
    options: DecodeOptions | None = None,
) -> Evaluation:
    results: list[dict[str, Any]] = []
    people = 0
    for image in dataset["images"]:
        path = images_dir / image["file_name"]
        if not path.exists():
            raise UserError(f"image {path} of the annotations does not exist")
        network_input, geometry = letterbox(read_image(path), height, width)
        outputs = runner.run(network_input[None])
        names = roles(outputs)
        found = decode(outputs[names["heatmap"]][0], outputs[names["paf"]][0], geometry, options)
        people += len(found)
        results += to_results(int(image["id"]), found)
    return Evaluation(keypoint_ap(dataset, results), len(dataset["images"]), people, results)
