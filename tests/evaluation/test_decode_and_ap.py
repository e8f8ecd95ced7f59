"""TAO's bottom-up decoding and pycocotools' OKS AP on hand-made people with known answers."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from bodypose_exporter.evaluation.coco import keypoint_ap, to_results
from bodypose_exporter.evaluation.decode import decode
from bodypose_exporter.evaluation.grouping import Person
from bodypose_exporter.evaluation.peaks import find_peaks
from bodypose_exporter.evaluation.preprocess import Letterbox, letterbox
from bodypose_exporter.evaluation.skeleton import BPNET_JOINTS, COCO_KEYPOINTS
from tests.conftest import FIGURES
from tests.evaluation.synthetic import coco_dataset, outputs, person

H, W = 224, 320
PEOPLE = [person(20, 20, 110, 190), person(170, 30, 120, 180)]
#: COCO AP when one of two people is never detected: precision 1 up to recall 0.5,
#: i.e. 51 of COCO's 101 recall points, at every OKS threshold.
ONE_OF_TWO = 51 / 101


@pytest.fixture
def pycocotools() -> None:
    """Imported for real: it is in pyproject's exporter extra, so a missing one is a failure."""
    import pycocotools.cocoeval  # noqa: F401


def test_decoding_finds_each_joint_within_a_pixel() -> None:
    found = decode(*outputs(PEOPLE, H, W)).people
    assert len(found) == 2
    for got, truth in zip(sorted(found, key=lambda p: p.joints[1][0]), PEOPLE, strict=True):  # type: ignore[index]
        assert all(j is not None for j in got.joints)
        error = np.hypot(*(np.array(got.joints, dtype=np.float32) - truth).T)
        assert error.max() < 1.0
        assert 0.9 < got.score < 1.0


def test_perfect_outputs_score_ap_1(pycocotools: None) -> None:
    results = to_results(1, decode(*outputs(PEOPLE, H, W)).people)
    figures = keypoint_ap(coco_dataset(PEOPLE, H, W), results)
    assert figures["AP_0.50:0.95_all"] == 1.0 and figures["AR_0.50:0.95_all"] == 1.0
    FIGURES.append(
        f"evaluation: synthetic 2 people, perfect outputs: AP {figures['AP_0.50:0.95_all']}"
    )


def test_a_missing_person_halves_recall_and_ap_is_51_of_101(pycocotools: None) -> None:
    results = to_results(1, decode(*outputs(PEOPLE[:1], H, W)).people)
    figures = keypoint_ap(coco_dataset(PEOPLE, H, W), results)
    assert figures["AP_0.50:0.95_all"] == pytest.approx(ONE_OF_TWO, abs=1e-9)
    assert figures["AR_0.50:0.95_all"] == pytest.approx(0.5)
    FIGURES.append(
        f"evaluation: synthetic, one of 2 people missing: AP {figures['AP_0.50:0.95_all']:.5f} "
        f"(expected 51/101 = {ONE_OF_TWO:.5f})"
    )


def test_a_displaced_person_passes_loose_oks_thresholds_only(pycocotools: None) -> None:
    # Every joint of the second person 12 px to the right: OKS well below 0.95, above 0.5.
    moved = [PEOPLE[0], PEOPLE[1] + np.array([12.0, 0.0], np.float32)]
    results = to_results(1, decode(*outputs(moved, H, W)).people)
    figures = keypoint_ap(coco_dataset(PEOPLE, H, W), results)
    assert figures["AP_0.5"] == 1.0
    assert ONE_OF_TWO - 1e-6 < figures["AP_0.50:0.95_all"] < 1.0


def test_no_people_score_zero(pycocotools: None) -> None:
    empty = np.zeros((H // 8, W // 8, 19), np.float32), np.zeros((H // 8, W // 8, 38), np.float32)
    assert decode(*empty).people == []
    assert keypoint_ap(coco_dataset(PEOPLE, H, W), [])["AP_0.50:0.95_all"] == 0.0


def test_results_map_18_joints_to_cocos_17_by_name() -> None:
    joints: list[tuple[float, float] | None] = [(float(i + 1), 100.0 + i) for i in range(18)]
    joints[BPNET_JOINTS.index("left_ankle")] = None
    (result,) = to_results(7, [Person(tuple(joints), 0.5)])
    assert result["image_id"] == 7 and result["category_id"] == 1 and result["score"] == 0.5
    kp = np.array(result["keypoints"]).reshape(17, 3)
    nose, left_ankle = COCO_KEYPOINTS.index("nose"), COCO_KEYPOINTS.index("left_ankle")
    assert kp[nose].tolist() == [1, 100, 1]  # BpNet joint 0
    assert kp[COCO_KEYPOINTS.index("left_ear")].tolist() == [18, 117, 1]  # BpNet joint 17
    assert kp[left_ankle].tolist() == [0, 0, 0]


def test_peaks_are_taos_smoothed_four_neighbour_maxima() -> None:
    heat = np.zeros((20, 20, 3), np.float32)
    heat[5, 5, 0] = 1.0  # smoothed peak 0.04: below the 0.1 threshold
    heat[10:13, 10:13, 0] = 1.0  # smoothed peak ~0.3 at the centre
    heat[8, 15, 1] = 5.0
    peaks = find_peaks(heat).peaks
    assert [(p.x, p.y) for p in peaks[0]] == [(11, 11)]
    assert [(p.x, p.y, p.score, p.id) for p in peaks[1]] == [(15, 8, 5.0, 1)]


def test_letterbox_geometry_maps_back_to_the_image() -> None:
    image = np.full((300, 200, 3), 90, np.uint8)  # portrait into a landscape network input
    network_input, geometry = letterbox(image, H, W)
    assert network_input.shape == (H, W, 3)
    # padded to 428 x 300 (aspect 320/224), 114 grey columns on the left
    assert geometry == Letterbox(top=0, left=114, fy=H / 300, fx=W / 428)
    x, y = geometry.to_image(W / 2, H / 2)
    assert x == pytest.approx(100.0) and y == pytest.approx(150.0)
    assert network_input[0, 0].tolist() == [0.0, 0.0, 0.0]  # grey pad normalizes to 0


def test_evaluation_cli_on_images_fp32_and_artifact_agree(
    exported: Path, sample_dir: Path, tmp_path: Path, pycocotools: None
) -> None:
    """The whole offline path on real images: both models decode the same, so AP is equal."""
    from bodypose_exporter.engines import backend_by_name
    from bodypose_exporter.evaluation.__main__ import main
    from tests.support.builds import build_request

    images = sorted((sample_dir / "images").iterdir())[:2]
    dataset = coco_dataset(PEOPLE, H, W)
    dataset["images"] = [
        {"id": 1 + i, "file_name": p.name, "height": int(cv2.imread(str(p)).shape[0]),
         "width": int(cv2.imread(str(p)).shape[1])}
        for i, p in enumerate(images)
    ]  # fmt: skip
    (tmp_path / "ann.json").write_text(json.dumps(dataset))
    artifact = tmp_path / "bpnet_model.224.320.fp32.engine"
    backend_by_name("onnxruntime").build(
        build_request(exported / "bpnet_model.onnx", artifact, precision="fp32")
    )
    code = main(
        [
            "--annotations", str(tmp_path / "ann.json"),
            "--images", str(sample_dir / "images"),
            "--onnx", str(exported / "bpnet_model.onnx"),
            "--engine", str(artifact),
            "--max_ap_drop", "0.0",
            "--output", str(tmp_path / "ap.json"),
        ]
    )  # fmt: skip
    assert code == 0
    report = json.loads((tmp_path / "ap.json").read_text())
    assert report["inputHW"] == [H, W] and report["gate"]["apDrop"] == 0.0
