"""`storage.location.Location`: one input, local or s3://, fetched where the stage works."""

from __future__ import annotations

from pathlib import Path

import pytest

from bodypose_exporter.errors import NotFoundError
from bodypose_exporter.storage.location import Location
from tests.conftest import S3Endpoint


def test_an_s3_input_is_fetched_into_work_under_its_name_and_a_local_one_read_in_place(
    s3_endpoint: S3Endpoint, s3_bucket: str, tmp_path: Path
) -> None:
    s3_endpoint.client().put_object(Bucket=s3_bucket, Key="in/model.etlt", Body=b"weights")
    work = tmp_path / "work"
    work.mkdir()
    fetched = Location(f"s3://{s3_bucket}/in/model.etlt").fetch(work, "model")
    assert fetched == work / "model.etlt" and fetched.read_bytes() == b"weights"
    local = tmp_path / "local.etlt"
    local.write_bytes(b"mine")
    assert Location(str(local)).fetch(work, "model") == local
    with pytest.raises(NotFoundError, match=f"model {tmp_path / 'gone.etlt'} does not exist"):
        Location(str(tmp_path / "gone.etlt")).fetch(work, "model")


def test_download_keeps_the_name_asked_for_and_is_for_s3_only(
    s3_endpoint: S3Endpoint, s3_bucket: str, tmp_path: Path
) -> None:
    s3_endpoint.client().put_object(Bucket=s3_bucket, Key="eval/a/1.jpg", Body=b"jpeg")
    dst = tmp_path / "images" / "a" / "1.jpg"
    Location(f"s3://{s3_bucket}/eval/a/1.jpg").download(dst)
    assert dst.read_bytes() == b"jpeg"
    with pytest.raises(ValueError, match="download is for s3:// locations"):
        Location(str(tmp_path / "x.jpg")).download(tmp_path / "y.jpg")
