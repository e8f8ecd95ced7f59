"""The sample stage (`bpnet sample`, `bpnet-sample`): a sample BodyPoseNet .tlt and a few images.

The model is the TAO-default BpNet (see `model.bpnet`) with seeded weights,
saved as Keras HDF5 and encrypted with the given key exactly as a TAO `.tlt`
is. The images are drawn (people as stick figures on textured backgrounds,
several sizes and aspect ratios, JPEG and PNG) so that preprocessing and
calibration meet the same variety real data has. Weights are untrained: the
outputs are meaningful only as numbers to compare across formats.

`write_trained_sample` (`bpnet sample --trained`) writes instead a narrow
BpNet trained on drawn skeletons (`synthetic`: TAO's shape and tensor names,
TAO's targets and loss; trained once per content and cached, see
`synthetic.cache`), an evaluation set of new drawings with their COCO
person-keypoints annotations, and other drawings for calibration, so that
OKS AP, and what an engine loses of it, are real figures.
"""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bodypose_exporter.codec import codec_by_name
from bodypose_exporter.codec.tao_files import write_tlt
from bodypose_exporter.model.bpnet import build_bpnet
from bodypose_exporter.synthetic.cache import trained_model
from bodypose_exporter.synthetic.people import write_set
from bodypose_exporter.synthetic.train import TrainSpec

# (height, width) of the sample images: landscape, portrait, small, large.
_IMAGE_SIZES = ((480, 640), (640, 480), (240, 320), (720, 1280), (368, 368), (300, 500))


def write_sample_model(
    path: Path, key: str, stages: int = 3, seed: int = 0, codec: str = "auto"
) -> str:
    """Write a seeded BpNet as an encrypted `.tlt`; returns the codec name used."""
    model = build_bpnet(stages=stages, seed=seed)
    chosen = codec_by_name(codec)[0]
    with tempfile.TemporaryDirectory(prefix="bpnet-sample-") as tmp:
        h5 = Path(tmp) / "model.h5"
        with warnings.catch_warnings():
            # HDF5 is "legacy" to Keras, and exactly the format a TAO .tlt holds.
            warnings.filterwarnings("ignore", message=".*HDF5 file via `model.save\\(\\)`")
            model.save(str(h5), save_format="h5", include_optimizer=False)
        write_tlt(h5, path, key, chosen)
    return chosen.name


def draw_person(img: np.ndarray, rng: np.random.Generator) -> None:
    h, w = img.shape[:2]
    scale = rng.uniform(0.25, 0.7) * h
    cx, top = rng.uniform(0.2, 0.8) * w, rng.uniform(0.05, 0.3) * h
    color = tuple(int(c) for c in rng.integers(0, 256, 3))
    thick = max(2, int(scale / 25))

    def pt(dx: float, dy: float) -> tuple[int, int]:
        return int(cx + dx * scale), int(top + dy * scale)

    cv2.circle(img, pt(0, 0.08), max(3, int(scale * 0.08)), color, -1)
    neck, hip = pt(0, 0.18), pt(0, 0.55)
    cv2.line(img, neck, hip, color, thick)
    for side in (-1, 1):
        elbow = pt(side * rng.uniform(0.1, 0.2), rng.uniform(0.25, 0.4))
        cv2.line(img, neck, elbow, color, thick)
        cv2.line(img, elbow, pt(side * rng.uniform(0.1, 0.3), rng.uniform(0.3, 0.6)), color, thick)
        knee = pt(side * rng.uniform(0.05, 0.15), 0.75)
        cv2.line(img, hip, knee, color, thick)
        cv2.line(img, knee, pt(side * rng.uniform(0.05, 0.2), 0.97), color, thick)


def write_sample_images(directory: Path, count: int, seed: int = 0) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = []
    for i in range(count):
        h, w = _IMAGE_SIZES[i % len(_IMAGE_SIZES)]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        base = rng.uniform(40, 200, 3)
        img = np.stack(
            [
                base[c] + 40 * np.sin(xx / rng.uniform(20, 90) + yy / rng.uniform(20, 90))
                for c in range(3)
            ],
            axis=-1,
        )
        img = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
        for _ in range(int(rng.integers(1, 4))):
            draw_person(img, rng)
        suffix = ".png" if i % 4 == 3 else ".jpg"
        path = directory / f"sample_{i:04d}{suffix}"
        cv2.imwrite(str(path), img)
        written.append(path)
    return written


#: Seeds of the evaluation and calibration drawings, away from the training stream's.
EVALUATION_SEED = 1000
CALIBRATION_SEED = 2000
TRAINED_MODEL_NAME = "bpnet_sample.tlt"


@dataclass(frozen=True)
class TrainedSample:
    model: Path  # the encrypted .tlt
    codec: str
    images: Path  # evaluation images
    annotations: Path  # their COCO person keypoints
    calibration_images: Path
    training: dict[str, Any]  # spec, seconds, loss curve, cache key
    trained_now: bool  # False when the weights came from the cache


def write_trained_sample(
    out: Path,
    key: str,
    images: int = 40,
    seed: int = 0,
    codec: str = "auto",
    spec: TrainSpec | None = None,
) -> TrainedSample:
    """The trained sample .tlt, `images` annotated drawings to evaluate on, as many to calibrate.

    Layout: `bpnet_sample.tlt`, `images/` + `person_keypoints.json`,
    `calibration/images/` (+ its own annotations). The drawings have the
    training images' size, so `-d HEIGHT,WIDTH,3` of `spec.images` evaluates
    them without padding.
    """
    spec = spec or TrainSpec()
    cached = trained_model(spec)
    chosen = codec_by_name(codec)[0]
    out.mkdir(parents=True, exist_ok=True)
    write_tlt(cached.h5, out / TRAINED_MODEL_NAME, key, chosen)
    images_dir, annotations = write_set(out, images, EVALUATION_SEED + seed, spec.images)
    calibration, _ = write_set(out / "calibration", images, CALIBRATION_SEED + seed, spec.images)
    return TrainedSample(
        out / TRAINED_MODEL_NAME,
        chosen.name,
        images_dir,
        annotations,
        calibration,
        cached.info,
        cached.trained_now,
    )
