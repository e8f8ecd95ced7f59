"""`-m` and `-o` as s3:// URIs, against a real S3 server on loopback (MinIO)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import SAMPLE_KEY, S3Endpoint, free_port
from tests.exporter.conftest import RunCli


def test_export_from_and_to_s3(
    run_cli: RunCli, sample_dir: Path, s3_endpoint: S3Endpoint, s3_bucket: str
) -> None:
    s3 = s3_endpoint.client()
    s3.upload_file(str(sample_dir / "bpnet_sample.tlt"), s3_bucket, "models/bpnet.tlt")
    out = f"s3://{s3_bucket}/exports/224x320/bpnet.etlt"
    r = run_cli(
        "-m", f"s3://{s3_bucket}/models/bpnet.tlt", "-k", SAMPLE_KEY, "-d", "224,320,3", "-o", out
    )
    assert r.code == 0, r.err
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket)["Contents"]}
    assert keys == {
        "models/bpnet.tlt",
        "exports/224x320/bpnet.etlt",
        "exports/224x320/bpnet.onnx",
        "exports/224x320/reference.npz",
        "exports/224x320/manifest.json",
    }
    manifest = json.loads(
        s3.get_object(Bucket=s3_bucket, Key="exports/224x320/manifest.json")["Body"].read()
    )
    assert [a["path"] for a in manifest["artifacts"]] == [
        out,
        out.replace(".etlt", ".onnx"),
        out.replace("bpnet.etlt", "reference.npz"),
    ]
    etlt_size = s3.head_object(Bucket=s3_bucket, Key="exports/224x320/bpnet.etlt")["ContentLength"]
    assert manifest["artifacts"][0]["bytes"] == etlt_size


def test_default_output_of_an_s3_model_is_beside_it(
    run_cli: RunCli, sample_dir: Path, s3_endpoint: S3Endpoint, s3_bucket: str
) -> None:
    s3 = s3_endpoint.client()
    s3.upload_file(str(sample_dir / "bpnet_sample.tlt"), s3_bucket, "m/bpnet.tlt")
    r = run_cli("-m", f"s3://{s3_bucket}/m/bpnet.tlt", "-k", SAMPLE_KEY, "-d", "224,320,3")
    assert r.code == 0, r.err
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket)["Contents"]}
    assert {"m/bpnet.etlt", "m/bpnet.onnx", "m/manifest.json"} <= keys


def test_missing_s3_object(run_cli: RunCli, s3_bucket: str, tmp_path: Path) -> None:
    r = run_cli(
        "-m", f"s3://{s3_bucket}/no/such.tlt", "-k", SAMPLE_KEY, "-o", str(tmp_path / "x.etlt")
    )
    assert r.code == 2
    assert f"s3://{s3_bucket}/no/such.tlt does not exist" in r.err
    assert list(tmp_path.iterdir()) == []


def test_missing_output_bucket_fails_before_work(
    run_cli: RunCli, sample_dir: Path, s3_endpoint: S3Endpoint, tmp_path: Path
) -> None:
    model = tmp_path / "m.tlt"
    shutil.copy(sample_dir / "bpnet_sample.tlt", model)
    r = run_cli("-m", str(model), "-k", SAMPLE_KEY, "-o", "s3://no-such-bucket-here/x.etlt")
    assert r.code == 2
    assert "cannot write to s3://no-such-bucket-here/x.etlt" in r.err


def test_unreachable_s3_endpoint(
    run_cli: RunCli, s3_endpoint: S3Endpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A loopback port nobody listens on.
    monkeypatch.setitem(os.environ, "AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    r = run_cli("-m", "s3://bucket/m.tlt", "-k", SAMPLE_KEY, "-o", str(tmp_path / "x.etlt"))
    # Not bad input (2): 75 (EX_TEMPFAIL), which the operator's Jobs retry.
    assert r.code == 75
    assert "cannot reach the S3 endpoint for s3://bucket/m.tlt" in r.err
