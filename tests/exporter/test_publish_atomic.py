"""Publishing to S3 is all-or-nothing for readers: an upload failing part-way, against MinIO.

The outputs go up one object at a time, the manifest last, and readers trust
only what a manifest lists (`storage/outputs.py`). Here the second upload of
a run fails as it would when the endpoint goes away mid-publish (the real
boto3 client, against the session's MinIO, whose `upload_file` raises
botocore's `EndpointConnectionError` on its second call): the command must
fail naming the URI, leave no manifest.json under the prefix (not even an
earlier run's, which no longer matches the objects replaced), and the same
command run again must publish a set whose manifest's sizes and sha256
values are those of the objects in S3.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from bodypose_exporter.storage import s3 as storage_s3
from tests.conftest import SAMPLE_KEY, S3Endpoint
from tests.exporter.conftest import RunCli

PREFIX = "exports/224x320"
NAMES = ["bpnet.etlt", "bpnet.onnx", "reference.npz", "manifest.json"]


def fail_upload(monkeypatch: pytest.MonkeyPatch, endpoint: S3Endpoint, number: int) -> list[str]:
    """Make the `number`-th upload of the process under test fail; returns the keys attempted."""
    attempted: list[str] = []
    real_client: Callable[[], Any] = storage_s3.client

    wrapped: set[int] = set()

    def client() -> Any:
        c = real_client()  # one per process (storage.s3): wrap its upload_file once
        if id(c) in wrapped:
            return c
        upload_file = c.upload_file

        def upload(src: str, bucket: str, key: str, *args: Any, **kwargs: Any) -> None:
            attempted.append(key)
            if len(attempted) == number:
                raise EndpointConnectionError(endpoint_url=endpoint.url)
            upload_file(src, bucket, key, *args, **kwargs)

        monkeypatch.setattr(c, "upload_file", upload)
        wrapped.add(id(c))
        return c

    monkeypatch.setattr(storage_s3, "client", client)
    return attempted


def keys(endpoint: S3Endpoint, bucket: str) -> list[str]:
    listed = endpoint.client().list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}/")
    return sorted(o["Key"] for o in listed.get("Contents", []))


def check_published_set(endpoint: S3Endpoint, bucket: str, tmp_path: Path) -> dict[str, Any]:
    """The manifest lists every other object under the prefix with its real size and sha256."""
    s3 = endpoint.client()
    tmp_path.mkdir()
    manifest = json.loads(
        s3.get_object(Bucket=bucket, Key=f"{PREFIX}/manifest.json")["Body"].read()
    )
    listed = {a["path"]: a for a in manifest["artifacts"]}
    assert sorted(listed) == [f"s3://{bucket}/{PREFIX}/{n}" for n in sorted(NAMES[:-1])]
    assert keys(endpoint, bucket) == sorted(f"{PREFIX}/{n}" for n in NAMES)
    for path, artifact in listed.items():
        local = tmp_path / Path(path).name
        s3.download_file(bucket, path.removeprefix(f"s3://{bucket}/"), str(local))
        assert set(artifact) >= {"kind", "path", "sha256", "bytes"}
        assert artifact["bytes"] == local.stat().st_size
        assert artifact["sha256"] == hashlib.sha256(local.read_bytes()).hexdigest()
    return manifest


def test_an_upload_failing_part_way_publishes_no_manifest_and_a_retry_does(
    run_cli: RunCli,
    sample_dir: Path,
    s3_endpoint: S3Endpoint,
    s3_bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s3_endpoint.client().upload_file(
        str(sample_dir / "bpnet_sample.tlt"), s3_bucket, "models/bpnet.tlt"
    )
    out = f"s3://{s3_bucket}/{PREFIX}/bpnet.etlt"
    export = ("-m", f"s3://{s3_bucket}/models/bpnet.tlt", "-k", SAMPLE_KEY, "-d", "224,320,3")
    failing = f"s3://{s3_bucket}/{PREFIX}/bpnet.onnx"

    # 1. A fresh prefix: the .etlt goes up, the .onnx fails.
    with monkeypatch.context() as patch:
        attempted = fail_upload(patch, s3_endpoint, 2)
        r = run_cli(*export, "-o", out)
    assert attempted == [f"{PREFIX}/bpnet.etlt", f"{PREFIX}/bpnet.onnx"]
    assert r.code == 75  # S3 away: a Job retries it (not bad input, 2)
    assert r.err.strip().splitlines()[-1] == (
        f"bpnet-export: error: cannot write {failing}: the S3 endpoint did not answer (Could not "
        f'connect to the endpoint URL: "{s3_endpoint.url}"); publishing to '
        f"s3://{s3_bucket}/{PREFIX}/ stopped after 1 of 4 files: no manifest.json was written, "
        "so nothing there is listed (the ones written were removed); run the same command again"
    )
    assert keys(s3_endpoint, s3_bucket) == []

    # 2. The same command again publishes the whole set.
    r = run_cli(*export, "-o", out)
    assert r.code == 0, r.err
    first = check_published_set(s3_endpoint, s3_bucket, tmp_path / "first")

    # 3. Over that complete set: its manifest is withdrawn before the first object is
    #    replaced, so the failure leaves no manifest listing objects that changed.
    with monkeypatch.context() as patch:
        fail_upload(patch, s3_endpoint, 2)
        r = run_cli(*export, "-o", out)
    assert r.code == 75
    assert f"cannot write {failing}" in r.err and "no manifest.json was written" in r.err
    assert f"{PREFIX}/manifest.json" not in keys(s3_endpoint, s3_bucket)

    # 4. And again the retry publishes a set whose manifest matches the objects.
    r = run_cli(*export, "-o", out)
    assert r.code == 0, r.err
    second = check_published_set(s3_endpoint, s3_bucket, tmp_path / "second")
    assert second["createdAt"] >= first["createdAt"]
