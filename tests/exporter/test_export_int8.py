"""`bpnet-export --data_type int8` end to end: the real sample model, images and caches in S3.

What the operator's export Job does: the model, the calibration images (an
s3:// prefix) and the tensorfile are in S3, and cal.bin, the QDQ model and
the ranges are published beside the .etlt. A second run reuses the published
cal.bin and calibrates nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import SAMPLE_KEY, S3Endpoint
from tests.exporter.conftest import RunCli

DIMS = "224,320,3"
SENTENCE = "The images must number at least batches x batchSize"


def _upload_images(s3: object, bucket: str, images: Path, prefix: str) -> int:
    count = 0
    for path in sorted(images.iterdir()):
        s3.upload_file(str(path), bucket, f"{prefix}/{path.name}")  # type: ignore[attr-defined]
        count += 1
    return count


def test_int8_from_s3_images_then_reusing_the_published_cache(
    run_cli: RunCli,
    s3_endpoint: S3Endpoint,
    s3_bucket: str,
    sample_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    s3 = s3_endpoint.client()
    s3.upload_file(str(sample_dir / "bpnet_sample.tlt"), s3_bucket, "models/bpnet.tlt")
    _upload_images(s3, s3_bucket, sample_dir / "images", "cal/images")
    s3.put_object(Bucket=s3_bucket, Key="cal/images/README.txt", Body=b"not an image")
    base = f"s3://{s3_bucket}"

    r = run_cli(
        "-m", f"{base}/models/bpnet.tlt", "-k", SAMPLE_KEY, "-d", DIMS,
        "-o", f"{base}/out/bpnet_model.etlt", "--data_type", "int8",
        "--cal_image_dir", f"{base}/cal/images", "--batches", "3", "--batch_size", "2",
        "--cal_data_file", f"{base}/cal/calibration.tensorfile",
        "--cal_cache_file", f"{base}/cal/cal.bin",
    )  # fmt: skip
    assert r.code == 0, r.err
    assert "INT8 calibration (entropy): 6 images in 3 batches" in r.out
    # Counted as in a local directory (tests/calibration/test_stage.py), never downloaded.
    assert "; 1 non-image files ignored" in r.out
    assert f"ignored 1 files in {base}/cal/images that are not .jpg/.jpeg/.png: README.txt" in (
        caplog.text
    )
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket)["Contents"]}
    for name in ("cal.bin", "bpnet_model.qdq.onnx", "calibration.json", "manifest.json"):
        assert f"out/{name}" in keys
    # Written where the flags named them, as TAO writes its local paths.
    assert {"cal/cal.bin", "cal/calibration.tensorfile"} <= keys
    manifest = json.loads(s3.get_object(Bucket=s3_bucket, Key="out/manifest.json")["Body"].read())
    kinds = {a["kind"]: a for a in manifest["artifacts"]}
    assert kinds["calibration-cache"]["path"] == f"{base}/out/cal.bin"
    assert kinds["qdq-model"]["path"] == f"{base}/out/bpnet_model.qdq.onnx"
    cal = manifest["calibration"]
    assert (cal["images"], cal["batches"], cal["cacheReused"]) == (6, 3, False)
    assert cal["tensorfile"] == f"{base}/cal/calibration.tensorfile"
    assert cal["ignoredFiles"] == 1  # README.txt, as a directory's non-image files count
    # 8 sample images, 6 calibrated: the other 2 are the held-back agreement set.
    assert cal["agreement"]["images"] == 2
    assert cal["agreement"]["heatmap_cosine_mean"] > 0.99
    published_cal = s3.get_object(Bucket=s3_bucket, Key="out/cal.bin")["Body"].read()
    assert published_cal.startswith(b"TRT-")

    # Second run: the published cal.bin exists, so nothing is calibrated.
    r = run_cli(
        "-m", f"{base}/models/bpnet.tlt", "-k", SAMPLE_KEY, "-d", DIMS,
        "-o", f"{base}/again/bpnet_model.etlt", "--data_type", "int8",
        "--cal_image_dir", f"{base}/cal/nothing-here", "--cal_cache_file", f"{base}/out/cal.bin",
    )  # fmt: skip
    assert r.code == 0, r.err
    again = json.loads(s3.get_object(Bucket=s3_bucket, Key="again/manifest.json")["Body"].read())
    assert again["calibration"]["cacheReused"] is True
    assert again["calibration"]["images"] == 0
    assert s3.get_object(Bucket=s3_bucket, Key="again/cal.bin")["Body"].read() == published_cal


def test_too_few_images_under_an_s3_prefix_fails_before_the_model_is_read(
    run_cli: RunCli, s3_endpoint: S3Endpoint, s3_bucket: str, sample_dir: Path, tmp_path: Path
) -> None:
    s3 = s3_endpoint.client()
    _upload_images(s3, s3_bucket, sample_dir / "images", "few")
    s3.put_object(Bucket=s3_bucket, Key="few/labels.json", Body=b"{}")
    # The model does not even exist: the image count is checked first.
    r = run_cli(
        "-m", f"s3://{s3_bucket}/no/such/model.tlt", "-k", SAMPLE_KEY, "-d", DIMS,
        "-o", str(tmp_path / "out" / "bpnet_model.etlt"), "--data_type", "int8",
        "--cal_image_dir", f"s3://{s3_bucket}/few", "--batches", "5", "--batch_size", "2",
        "--cal_cache_file", str(tmp_path / "cal.bin"),
    )  # fmt: skip
    assert r.code == 2
    assert (
        f"{SENTENCE}: --cal_image_dir s3://{s3_bucket}/few holds 8 images (.jpg, .jpeg, .png), "
        "fewer than --batches 5 x --batch_size 2 = 10; 1 other files were ignored"
    ) in r.err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert not (tmp_path / "cal.bin").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--batches", "0"], "--batches must be at least 1, got 0"),
        (["--batch_size", "-1"], "--batch_size must be at least 1, got -1"),
    ],
)
def test_bad_calibration_counts(
    run_cli: RunCli, sample_dir: Path, tmp_path: Path, flags: list[str], message: str
) -> None:
    r = run_cli(
        "-m", str(sample_dir / "bpnet_sample.tlt"), "-k", SAMPLE_KEY, "-d", DIMS,
        "-o", str(tmp_path / "bpnet_model.etlt"), "--data_type", "int8",
        "--cal_image_dir", str(sample_dir / "images"), "--cal_cache_file",
        str(tmp_path / "cal.bin"), *flags,
    )  # fmt: skip
    assert r.code == 2
    assert message in r.err


def test_empty_s3_prefix(
    run_cli: RunCli, s3_endpoint: S3Endpoint, s3_bucket: str, sample_dir: Path, tmp_path: Path
) -> None:
    r = run_cli(
        "-m", str(sample_dir / "bpnet_sample.tlt"), "-k", SAMPLE_KEY, "-d", DIMS,
        "-o", str(tmp_path / "bpnet_model.etlt"), "--data_type", "int8",
        "--cal_image_dir", f"s3://{s3_bucket}/empty/", "--cal_cache_file",
        str(tmp_path / "cal.bin"),
    )  # fmt: skip
    assert r.code == 2
    assert f"{SENTENCE}: --cal_image_dir s3://{s3_bucket}/empty/ holds no images" in r.err
