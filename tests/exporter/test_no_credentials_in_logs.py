"""The exporter's own log never carries a key or a credential: what a Job's pod prints is
what the kubelet takes as its termination message when it fails without its result
(`FallbackToLogsOnError`), and the operator shows that text in the status and events
(which also redacts what it knows of: controller/redact.py).

`bpnet-export` as a Job runs it (no -v, the key in $BODYPOSE_MODEL_KEY, the S3 account in
the AWS_* environment), failing the ways a user's export fails: a wrong key, a model that
is not there, S3 credentials S3 refuses.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import S3Endpoint

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    ("failure", "reason"),
    [("wrong-key", "WrongKey"), ("no-model", "NotFound"), ("refused-credentials", "")],
)
def test_a_failing_export_prints_neither_the_model_key_nor_the_s3_credentials(
    s3_endpoint: S3Endpoint,
    s3_bucket: str,
    sample_dir: Path,
    tmp_path: Path,
    failure: str,
    reason: str,
) -> None:
    model_key = "not-the-key-Q7rT2x"
    key_id, secret = os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
    s3 = s3_endpoint.client()
    s3.upload_file(str(sample_dir / "bpnet_sample.tlt"), s3_bucket, "models/m.tlt")
    env = {**os.environ, "BODYPOSE_MODEL_KEY": model_key,
           "BODYPOSE_TERMINATION_LOG": str(tmp_path / "termination-log")}  # fmt: skip
    model = f"s3://{s3_bucket}/models/m.tlt"
    if failure == "no-model":
        model = f"s3://{s3_bucket}/models/absent.tlt"
    if failure == "refused-credentials":
        key_id, secret = "AKIAREFUSEDKEY000001", "refused/secret+Value0123456789abcdefghij"
        env.update(AWS_ACCESS_KEY_ID=key_id, AWS_SECRET_ACCESS_KEY=secret)
    done = subprocess.run(
        [str(BIN / "bpnet-export"), "-m", model, "-o", f"s3://{s3_bucket}/out/m.etlt",
         "-d", "224,320,3"],
        capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode != 0, done.stderr[-2000:]
    termination = tmp_path / "termination-log"
    said = done.stdout + done.stderr + (termination.read_text() if termination.exists() else "")
    assert said.strip(), "the failure says nothing"
    assert reason in said, said[-2000:]
    for value in (model_key, key_id, secret):
        assert value not in said, (value, said[-2000:])
