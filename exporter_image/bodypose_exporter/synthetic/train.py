"""Training the narrow BodyPoseNet on freshly drawn people, for a few minutes on a CPU.

Each step draws a new batch (`people.image`: no image is seen twice, so
there is nothing to over-fit), makes TAO's targets at stride 8 (`labels`),
feeds the images as the exported engine will see them (TAO's strict-mode
normalization, `calibration.preprocess.preprocess`: RGB, pixel / 256 - 0.5)
and minimises TAO's loss (NVIDIA/tao_tensorflow1_backend
`nvidia_tao_tf1/cv/bpnet/losses/bpnet_loss.py`, `BpNetLoss.l2_loss`: per
stage, `tf.nn.l2_loss(prediction - label)` for the heatmaps with background
and for the PAFs, summed; no mask, every joint is labelled). TAO trains with
momentum SGD at 2e-5 for days; Adam at 2e-3 with a cosine decay gets a small
network useful in minutes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from bodypose_exporter.calibration.preprocess import Normalization, preprocess
from bodypose_exporter.model.keras_backend import keras, tf
from bodypose_exporter.synthetic import labels
from bodypose_exporter.synthetic.people import SetSpec, image
from bodypose_exporter.synthetic.small_bpnet import Widths, build_small_bpnet

log = logging.getLogger(__name__)

STRIDE = 8


@dataclass(frozen=True)
class TrainSpec:
    """Everything that decides the trained weights (and so the sample cache's key)."""

    steps: int = 1200
    batch_size: int = 8
    learning_rate: float = 2e-3
    seed: int = 0
    images: SetSpec = field(default_factory=SetSpec)
    widths: Widths = field(default_factory=Widths)


@dataclass(frozen=True)
class Trained:
    model: Any  # keras.Model, training-time outputs
    seconds: float
    losses: list[float]  # mean loss per image, every tenth of the steps


def batch(
    rng: np.random.Generator, spec: TrainSpec
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Network inputs, heatmap targets and PAF targets for one batch of new drawings."""
    h, w = spec.images.height, spec.images.width
    inputs, heat, paf = [], [], []
    for _ in range(spec.batch_size):
        img, people = image(rng, spec.images)
        joints = [j for j, _ in people]
        inputs.append(preprocess(img, h, w, Normalization()))
        heat.append(labels.heatmaps(joints, h, w, STRIDE))
        paf.append(labels.part_affinity_fields(joints, h, w, STRIDE))
    return np.stack(inputs), np.stack(heat), np.stack(paf)


def train(spec: TrainSpec) -> Trained:
    keras.utils.set_random_seed(spec.seed)
    model = build_small_bpnet(spec.widths)
    stages = spec.widths.stages
    schedule = keras.optimizers.schedules.CosineDecay(spec.learning_rate, spec.steps, alpha=0.05)
    optimizer = keras.optimizers.Adam(schedule)

    @tf.function  # type: ignore[untyped-decorator]
    def step(x: Any, heat: Any, paf: Any) -> Any:
        with tf.GradientTape() as tape:
            outputs = model(x, training=True)
            loss = tf.add_n(
                [tf.nn.l2_loss(outputs[s] - heat) for s in range(stages)]
                + [tf.nn.l2_loss(outputs[stages + s] - paf) for s in range(stages)]
            )
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    rng = np.random.default_rng(spec.seed)
    losses: list[float] = []
    every = max(1, spec.steps // 10)
    running = 0.0
    start = time.monotonic()
    for i in range(spec.steps):
        loss = float(step(*(tf.constant(a) for a in batch(rng, spec))))
        running += loss / spec.batch_size
        if (i + 1) % every == 0:
            losses.append(running / every)
            log.info("training step %d/%d: loss %.2f per image", i + 1, spec.steps, losses[-1])
            running = 0.0
    return Trained(model, time.monotonic() - start, losses)
