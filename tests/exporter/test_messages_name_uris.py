"""Failures name the user's own URI, never the scratch file the model was fetched to."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.conftest import SAMPLE_KEY, S3Endpoint
from tests.exporter.conftest import RunCli


def test_a_wrong_key_names_the_s3_uri_not_the_scratch_copy(
    run_cli: RunCli, sample_dir: Path, s3_endpoint: S3Endpoint, s3_bucket: str
) -> None:
    s3_endpoint.client().upload_file(
        str(sample_dir / "bpnet_sample.tlt"), s3_bucket, "models/bpnet.tlt"
    )
    uri = f"s3://{s3_bucket}/models/bpnet.tlt"
    out = f"s3://{s3_bucket}/out/bpnet.etlt"
    r = run_cli("-m", uri, "-k", "not-the-key", "-d", "224,320,3", "-o", out)
    assert r.code != 0
    assert f"wrong key for {uri}: decrypting it with the given key" in r.err
    assert "bpnet-export-" not in r.err  # the scratch directory's name


def test_an_output_the_credentials_may_read_but_not_write_is_refused_before_the_work(
    run_cli: RunCli,
    sample_dir: Path,
    s3_endpoint: S3Endpoint,
    s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from devcluster.minio import add_tenant

    reader_bucket = f"reader-{uuid.uuid4().hex[:8]}"
    reader = add_tenant(s3_endpoint, reader_bucket, read_only=(s3_bucket,))
    s3_endpoint.client().upload_file(
        str(sample_dir / "bpnet_sample.tlt"), reader_bucket, "models/bpnet.tlt"
    )
    for key, value in reader.environment().items():
        monkeypatch.setenv(key, value)
    import boto3

    # boto3's default session keeps the credentials it resolved first (the root's).
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    out = f"s3://{s3_bucket}/ro/bpnet.etlt"
    r = run_cli("-m", f"s3://{reader_bucket}/models/bpnet.tlt", "-k", SAMPLE_KEY,
                "-d", "224,320,3", "-o", out)  # fmt: skip
    assert r.code == 2
    assert f"cannot write to {out}: access denied" in r.err
    assert "/scratch" not in r.err and "bpnet-export-" not in r.err
    assert "Traceback" not in r.err


def test_a_corrupt_tensorfile_on_s3_is_named_by_its_uri(
    run_cli: RunCli, sample_dir: Path, s3_endpoint: S3Endpoint, s3_bucket: str
) -> None:
    s3 = s3_endpoint.client()
    s3.upload_file(str(sample_dir / "bpnet_sample.tlt"), s3_bucket, "models/bpnet.tlt")
    s3.put_object(Bucket=s3_bucket, Key="cal/corrupt.tensorfile",
                  Body=b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)  # fmt: skip
    tensorfile = f"s3://{s3_bucket}/cal/corrupt.tensorfile"
    r = run_cli("-m", f"s3://{s3_bucket}/models/bpnet.tlt", "-k", SAMPLE_KEY,
                "-d", "224,320,3", "-o", f"s3://{s3_bucket}/out/bpnet.etlt",
                "--data_type", "int8", "--cal_data_file", tensorfile,
                "--batches", "2", "--batch_size", "2")  # fmt: skip
    assert r.code == 2
    assert f"--cal_data_file {tensorfile} cannot be read as a tensorfile" in r.err
    assert "bpnet-export-" not in r.err
