"""The trained sample's ingredients: TAO's targets, drawn people and their COCO annotations,
the cache that trains once, and the gate's arithmetic."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bodypose_exporter.evaluation.ap_figures import ApFigures
from bodypose_exporter.evaluation.ap_gate import check_ap_drop
from bodypose_exporter.evaluation.dataset import parse_annotations
from bodypose_exporter.evaluation.skeleton import BPNET_SKELETON
from bodypose_exporter.synthetic import labels
from bodypose_exporter.synthetic.cache import COMMITTED, committed_key, content_key, trained_model
from bodypose_exporter.synthetic.people import SetSpec, write_set
from bodypose_exporter.synthetic.train import TrainSpec


def test_heatmaps_are_taos_gaussians_at_cell_centres() -> None:
    joints = np.zeros((18, 2), np.float32) + 100.0
    joints[0] = (43.5, 27.5)  # the centre of cell (x 5, y 3) at stride 8
    heat = labels.heatmaps([joints], 64, 96, 8)
    assert heat.shape == (8, 12, 19)
    assert heat[3, 5, 0] == pytest.approx(1.0)
    # one cell to the right: 8 px away, sigma 7
    assert heat[3, 6, 0] == pytest.approx(np.exp(-64 / (2 * 49)), rel=1e-6)
    assert heat[0, 0, 0] == 0.0  # under TAO's 0.001 floor
    assert heat[3, 5, -1] == pytest.approx(0.0, abs=1e-6)  # background = 1 - max
    assert heat[0, 0, -1] == 1.0


def test_pafs_are_unit_vectors_within_a_stride_of_the_limb() -> None:
    k = BPNET_SKELETON.index((2, 9))  # neck -> right hip, PAF channels 2k, 2k + 1
    joints = np.zeros((18, 2), np.float32)
    joints[:] = (300.0, 300.0)
    joints[1], joints[8] = (16.0, 8.0), (16.0, 56.0)  # a vertical limb at x = 16
    paf = labels.part_affinity_fields([joints], 64, 96, 8)
    assert paf.shape == (8, 12, 38)
    column = paf[:, :, 2 * k + 1]  # y component
    assert column[1:7, 2].tolist() == [1.0] * 6  # cells whose top-left x is 16
    assert column[1:7, 1].tolist() == [1.0] * 6  # x 8: 8 px away, on the threshold
    assert column[:, 4].tolist() == [0.0] * 8  # x 32: too far
    assert paf[:, :, 2 * k].max() == 0.0  # no x component


def test_drawn_sets_are_coco_person_keypoints(tmp_path: Path) -> None:
    images, annotations = write_set(tmp_path, 3, seed=5, spec=SetSpec())
    dataset = parse_annotations(annotations.read_text(), str(annotations))
    assert sorted(p.name for p in images.iterdir()) == [
        "person_0000.jpg", "person_0001.jpg", "person_0002.jpg",
    ]  # fmt: skip
    assert len(dataset["categories"][0]["keypoints"]) == 17
    for ann in dataset["annotations"]:
        xy = np.array(ann["keypoints"]).reshape(17, 3)
        x0, y0, w, h = ann["bbox"]
        assert (xy[:, 2] == 2).all()
        assert (x0 <= xy[:, 0]).all() and (xy[:, 0] <= x0 + w).all()
        assert (y0 <= xy[:, 1]).all() and (xy[:, 1] <= y0 + h).all()
        assert (xy[:, 0] >= 0).all() and (xy[:, 0] < SetSpec().width).all()  # in the image
        assert (xy[:, 1] >= 0).all() and (xy[:, 1] < SetSpec().height).all()
        assert ann["area"] == pytest.approx(w * h, rel=1e-3)
    again = tmp_path / "again"
    write_set(again, 3, seed=5)
    assert json.loads((again / "person_keypoints.json").read_text()) == json.loads(
        annotations.read_text()
    )


def test_the_committed_weights_are_those_of_the_training_code() -> None:
    assert committed_key() == content_key(TrainSpec()), (
        "the drawing, labelling, network or training code changed since the trained sample's "
        f"weights were committed in {COMMITTED}: run `make sample-weights` and commit them"
    )


def test_a_cold_cache_takes_the_committed_weights_without_training(tmp_path: Path) -> None:
    got = trained_model(TrainSpec(), root=tmp_path)
    assert not got.trained_now
    assert got.h5 == tmp_path / content_key(TrainSpec()) / "model.h5"
    assert got.h5.read_bytes() == (COMMITTED / "model.h5").read_bytes()
    assert got.info["key"] == content_key(TrainSpec())


def test_the_cache_trains_once_per_content(tmp_path: Path) -> None:
    spec = TrainSpec(steps=2, batch_size=1)
    first = trained_model(spec, root=tmp_path)
    second = trained_model(spec, root=tmp_path)
    assert (first.trained_now, second.trained_now) == (True, False)
    assert first.h5 == second.h5 == tmp_path / content_key(spec) / "model.h5"
    assert json.loads((first.h5.parent / "training.json").read_text())["spec"]["steps"] == 2
    assert content_key(TrainSpec(steps=3, batch_size=1)) != content_key(spec)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def _figures(ap: float) -> ApFigures:
    return ApFigures(ap, ap, ap, ap, ap, images=1)


@pytest.mark.parametrize(
    ("precision", "reference", "engine", "passed"),
    [
        ("fp32", 0.60, 0.595, True),  # 0.5 points: the limit itself passes
        ("fp32", 0.60, 0.594, False),
        ("fp16", 0.60, 0.5951, True),
        ("int8", 0.60, 0.57, True),
        ("int8", 0.60, 0.5699, False),
        ("int8", 0.60, 0.65, True),  # a gain is a negative drop
    ],
)
def test_default_limits_in_ap_points(
    precision: str, reference: float, engine: float, passed: bool
) -> None:
    verdict = check_ap_drop(_figures(reference), _figures(engine), precision)
    assert verdict.passed is passed
    assert verdict.limit == {"fp32": 0.5, "fp16": 0.5, "int8": 3.0}[precision]


def test_an_explicit_limit_overrides_and_must_not_be_negative() -> None:
    assert check_ap_drop(_figures(0.6), _figures(0.5), "int8", 10.0).passed
    with pytest.raises(Exception, match="--max_ap_drop must not be negative, got -1 AP points"):
        check_ap_drop(_figures(0.6), _figures(0.5), "int8", -1.0)
