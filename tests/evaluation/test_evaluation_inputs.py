"""Evaluation sets a user gets wrong, each refused with the sentence they read; and maxImages.

The sets are hand-made (one network-sized image of two people whose ideal
outputs `synthetic.outputs` gives, so a right set scores AP 1.0); S3 sets
live in MinIO (tests/conftest.py), read with the credentials of a MinIO user
allowed only its own bucket (devcluster/minio.py `add_tenant`).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import cv2
import numpy as np
import numpy.typing as npt
import onnx
import pytest

from bodypose_exporter.errors import UserError
from bodypose_exporter.evaluation.__main__ import main
from bodypose_exporter.evaluation.dataset import EvaluationSetError
from bodypose_exporter.evaluation.inference import evaluate_set
from bodypose_exporter.evaluation.sources import EvaluationSetUnreadableError, open_set
from devcluster.minio import add_tenant
from tests.conftest import S3Endpoint, free_port
from tests.evaluation.synthetic import coco_dataset, outputs, person
from tests.evaluation.test_ap_gate import ideal_model

H, W = 224, 320
PEOPLE = [person(20, 20, 110, 190), person(170, 30, 120, 180)]


class IdealRunner:
    """An engine runner whose outputs are the two people's ideal heatmaps and PAFs."""

    def __init__(self) -> None:
        self.input_name = "input_1:0"
        self.output_names = ["paf_out/BiasAdd:0", "heatmap_out/BiasAdd:0"]
        self.max_batch_size = 1
        self.heat, self.paf = outputs(PEOPLE, H, W)

    def run(self, inputs: npt.NDArray[np.float32]) -> dict[str, npt.NDArray[np.float32]]:
        n = len(inputs)
        return {
            "paf_out/BiasAdd:0": np.repeat(self.paf[None], n, axis=0),
            "heatmap_out/BiasAdd:0": np.repeat(self.heat[None], n, axis=0),
        }

    def close(self) -> None:
        pass


def dataset(images: int = 1) -> dict[str, Any]:
    """`images` copies of the two-people image (ids 1..n), each with both people annotated."""
    one = coco_dataset(PEOPLE, H, W)
    out: dict[str, Any] = {"images": [], "annotations": [], "categories": one["categories"]}
    for i in range(images):
        out["images"].append({"id": i + 1, "file_name": f"img_{i}.png", "height": H, "width": W})
        for ann in one["annotations"]:  # type: ignore[attr-defined]
            out["annotations"].append({**ann, "id": len(out["annotations"]) + 1, "image_id": i + 1})
    return out


def write(root: Path, data: dict[str, Any], images: int | None = None) -> tuple[Path, Path]:
    """annotations.json and images/ with the files of the first `images` entries (default all)."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    for image in data["images"][:images]:
        cv2.imwrite(str(root / "images" / image["file_name"]), np.full((H, W, 3), 128, np.uint8))
    (root / "ann.json").write_text(json.dumps(data))
    return root / "ann.json", root / "images"


def refusal(tmp_path: Path, data: dict[str, Any], images: int | None = None) -> str:
    ann, imgs = write(tmp_path, data, images)
    with pytest.raises(EvaluationSetError) as exc:
        open_set(str(ann), str(imgs), tmp_path / "work")
    return str(exc.value)


def test_a_detection_file_is_not_keypoints(tmp_path: Path) -> None:
    data = dataset()
    data["categories"] = [{"id": 1, "name": "person", "supercategory": "person"}]
    message = refusal(tmp_path, data)
    assert message == (
        f"annotations {tmp_path / 'ann.json'} have no category with 'keypoints' (categories: "
        "'person'): they are not COCO person keypoints (a detection or captions file?); use "
        "person_keypoints_*.json"
    )


def test_another_joint_set_is_refused_naming_cocos_17(tmp_path: Path) -> None:
    data = dataset()
    data["categories"][0]["keypoints"] = data["categories"][0]["keypoints"] + ["neck"]
    message = refusal(tmp_path, data)
    assert "category 'person' has 18 keypoints, BodyPoseNet is scored on COCO's 17 (nose, " in (
        message
    )


def test_an_annotation_with_the_wrong_number_of_values_is_refused(tmp_path: Path) -> None:
    data = dataset()
    data["annotations"][1]["keypoints"] = data["annotations"][1]["keypoints"][:-3]
    assert refusal(tmp_path, data).endswith(
        "annotation 2 has 48 keypoint values, COCO person keypoints have 51 (17 joints x "
        "[x, y, visibility])"
    )


def test_images_named_by_the_annotations_must_exist(tmp_path: Path) -> None:
    message = refusal(tmp_path, dataset(3), images=1)
    assert message == (
        f"2 of the 3 images the annotations name are not in {tmp_path / 'images'}: img_1.png, "
        "img_2.png (each image's file_name is looked up relative to the images location)"
    )


def test_annotations_of_an_image_id_that_is_not_listed(tmp_path: Path) -> None:
    data = dataset()
    data["annotations"][0]["image_id"] = 7
    assert "image ids [7] of the annotations match no entry in 'images' (so no file)" in (
        refusal(tmp_path, data)
    )


def test_an_empty_set(tmp_path: Path) -> None:
    data = dataset()
    data["images"], data["annotations"] = [], []
    assert refusal(tmp_path, data).endswith("list no images: nothing to evaluate")


def test_a_set_without_people(tmp_path: Path) -> None:
    data = dataset()
    data["annotations"] = []
    assert refusal(tmp_path, data).endswith(
        "the 1 images evaluated have no annotated people, so AP is undefined; use images with "
        "people in them"
    )


def test_max_images_takes_the_first_ones(tmp_path: Path) -> None:
    ann, imgs = write(tmp_path, dataset(3))
    chosen = open_set(str(ann), str(imgs), tmp_path / "work", max_images=2)
    assert [i["id"] for i in chosen.dataset["images"]] == [1, 2]
    assert {a["image_id"] for a in chosen.dataset["annotations"]} == {1, 2}
    assert chosen.notes == ()
    figures = evaluate_set(IdealRunner(), chosen, H, W)
    assert (figures.ap, figures.images, figures.requested_images) == (1.0, 2, 2)
    assert (figures.annotated_people, figures.found_people) == (4, 4)


def test_max_images_beyond_the_set_uses_what_exists_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ann, imgs = write(tmp_path, dataset(3))
    with caplog.at_level(logging.WARNING):
        chosen = open_set(str(ann), str(imgs), tmp_path / "work", max_images=500)
    note = f"maxImages 500 is more than the 3 images in {ann}: evaluated all 3"
    assert note in caplog.messages
    figures = evaluate_set(IdealRunner(), chosen, H, W)
    assert (figures.ap, figures.images, figures.requested_images) == (1.0, 3, 500)
    assert figures.notes == (note,)
    assert figures.as_dict()["notes"] == [note]


def test_the_cli_says_so_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ann, imgs = write(tmp_path, dataset(2))
    onnx.save(ideal_model(*outputs(PEOPLE, H, W)), str(tmp_path / "ref.onnx"))
    args = ["--annotations", str(ann), "--images", str(imgs), "--onnx", str(tmp_path / "ref.onnx")]
    code = main([*args, "--max_images", "9", "--output", str(tmp_path / "ap.json")])
    out = capsys.readouterr().out
    assert code == 0
    assert f"note: maxImages 9 is more than the 2 images in {ann}: evaluated all 2" in out
    report = json.loads((tmp_path / "ap.json").read_text())
    assert (report["fp32"]["AP"], report["fp32"]["images"], report["fp32"]["requestedImages"]) == (
        1.0, 2, 9,
    )  # fmt: skip


def test_the_cli_refuses_a_bad_set_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = dataset()
    data["categories"][0].pop("keypoints")
    ann, imgs = write(tmp_path, data)
    onnx.save(ideal_model(*outputs(PEOPLE, H, W)), str(tmp_path / "ref.onnx"))
    code = main(
        ["--annotations", str(ann), "--images", str(imgs), "--onnx", str(tmp_path / "ref.onnx")]
    )
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2
    assert err.startswith(
        f"python -m bodypose_exporter.evaluation: error: annotations {ann} have no category "
        "with 'keypoints'"
    )


def _upload(s3_endpoint: S3Endpoint, bucket: str, root: Path, data: dict[str, Any]) -> None:
    ann, imgs = write(root, data)
    client = s3_endpoint.client()
    client.upload_file(str(ann), bucket, "eval/person_keypoints.json")
    for path in imgs.iterdir():
        client.upload_file(str(path), bucket, f"eval/images/{path.name}")


def test_a_set_on_s3_downloads_only_the_images_evaluated(
    s3_endpoint: S3Endpoint, s3_bucket: str, tmp_path: Path
) -> None:
    _upload(s3_endpoint, s3_bucket, tmp_path / "src", dataset(3))
    work = tmp_path / "work"
    work.mkdir()
    chosen = open_set(
        f"s3://{s3_bucket}/eval/person_keypoints.json",
        f"s3://{s3_bucket}/eval/images/",
        work,
        max_images=2,
    )
    assert sorted(p.name for p in chosen.images_dir.iterdir()) == ["img_0.png", "img_1.png"]
    assert evaluate_set(IdealRunner(), chosen, H, W).ap == 1.0


def test_missing_images_on_s3_are_named_before_any_download(
    s3_endpoint: S3Endpoint, s3_bucket: str, tmp_path: Path
) -> None:
    data = dataset(2)
    _upload(s3_endpoint, s3_bucket, tmp_path / "src", data)
    data = copy.deepcopy(data)
    data["images"][1]["file_name"] = "gone.png"
    s3_endpoint.client().put_object(
        Bucket=s3_bucket, Key="eval/person_keypoints.json", Body=json.dumps(data).encode()
    )
    with pytest.raises(EvaluationSetError) as exc:
        open_set(
            f"s3://{s3_bucket}/eval/person_keypoints.json",
            f"s3://{s3_bucket}/eval/images/",
            tmp_path,
        )
    assert str(exc.value).startswith(
        f"1 of the 2 images the annotations name are not in s3://{s3_bucket}/eval/images/: gone.png"
    )
    assert not (tmp_path / "images").exists()


def test_a_set_the_credentials_cannot_read(
    s3_endpoint: S3Endpoint, s3_bucket: str, tmp_path: Path
) -> None:
    """Another tenant's bucket, as a user (or a Job) runs it: exit 2, the URI and whose
    credentials fall short, never the secret."""
    _upload(s3_endpoint, s3_bucket, tmp_path / "src", dataset(1))
    onnx.save(ideal_model(*outputs(PEOPLE, H, W)), str(tmp_path / "ref.onnx"))
    tenant = add_tenant(s3_endpoint, f"{s3_bucket}-other")
    uri = f"s3://{s3_bucket}/eval/person_keypoints.json"
    done = subprocess.run(
        [
            sys.executable, "-m", "bodypose_exporter.evaluation", "--annotations", uri,
            "--images", f"s3://{s3_bucket}/eval/images/", "--onnx", str(tmp_path / "ref.onnx"),
        ],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, **tenant.environment(), "PYTHONWARNINGS": "ignore"},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    message = done.stderr.strip().splitlines()[-1]
    assert message.startswith(
        f"python -m bodypose_exporter.evaluation: error: cannot read the evaluation annotations "
        f"{uri}: access denied with the S3 credentials this process has (AWS_ACCESS_KEY_ID; in "
        "a cluster, the resource's credentialsSecretRef): allow them to read it ("
    )
    assert tenant.secret_key not in done.stderr


def test_images_the_credentials_cannot_list(
    s3_endpoint: S3Endpoint, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Annotations readable (a local copy) but the images on another tenant's bucket."""
    _upload(s3_endpoint, s3_bucket, tmp_path / "src", dataset(1))
    tenant = add_tenant(s3_endpoint, f"{s3_bucket}-other")
    for name, value in tenant.environment().items():
        monkeypatch.setenv(name, value)
    # boto3's default session keeps the credentials it first read: start a fresh one.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    with pytest.raises(EvaluationSetUnreadableError) as exc:
        open_set(str(tmp_path / "src" / "ann.json"), f"s3://{s3_bucket}/eval/images/", tmp_path)
    assert str(exc.value).startswith(
        f"cannot read the evaluation images s3://{s3_bucket}/eval/images/: access denied"
    )
    assert exc.value.exit_code == 2 and exc.value.reason == "EvaluationSetUnreadable"


def test_s3_away_stays_s3_away_whatever_the_uri_says(
    s3_endpoint: S3Endpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Access denied is told by storage's type, not by words in the message: an endpoint
    that does not answer, for a set whose URI holds "403" and "Forbidden", is S3 away
    (exit 75, retried), never a refusal of the credentials."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    uri = "s3://eval-403/Forbidden/person_keypoints.json"
    with pytest.raises(UserError) as exc:
        open_set(uri, "s3://eval-403/Forbidden/images/", tmp_path)
    assert not isinstance(exc.value, EvaluationSetUnreadableError)
    assert (exc.value.exit_code, exc.value.reason) == (75, "S3Unreachable")
    assert str(exc.value).startswith(f"cannot reach the S3 endpoint for {uri}: ")


def test_an_image_that_does_not_decode_is_named(tmp_path: Path) -> None:
    ann, imgs = write(tmp_path, dataset(2))
    (imgs / "img_1.png").write_bytes(b"not a png")
    chosen = open_set(str(ann), str(imgs), tmp_path / "work")
    with pytest.raises(EvaluationSetError) as exc:
        evaluate_set(IdealRunner(), chosen, H, W)
    assert str(exc.value).startswith(f"evaluation image img_1.png: {imgs / 'img_1.png'}: ")
