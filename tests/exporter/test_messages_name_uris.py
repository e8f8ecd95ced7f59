"""Failures name the user's own URI, never the scratch file the model was fetched to."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import S3Endpoint
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
