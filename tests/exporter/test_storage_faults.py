"""S3's three faults, fed for real on MinIO, arrive as storage's types with the messages users read.

Wrong credentials (an unknown access key, a wrong secret, a tenant without the grant)
-> `AccessDeniedError`, a refused write `WriteDeniedError`; a missing key or bucket
-> `MissingError`, a write into a missing bucket `WriteTargetMissingError`; a loopback
port nobody listens on -> `UnreachableError`. Callers branch on these types
(`evaluation.sources`, `storage.outputs`), so each test checks the type, the exit code
and `reason` users have always seen for that fault, and the message.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest

from bodypose_exporter.errors import NotFoundError, OutputNotWritableError, StorageUnavailableError
from bodypose_exporter.storage import s3
from bodypose_exporter.storage.errors import (
    AccessDeniedError,
    MissingError,
    UnreachableError,
    WriteDeniedError,
    WriteTargetMissingError,
)
from devcluster.minio import S3Server, add_tenant
from tests.conftest import S3Endpoint, free_port

SignIn = Callable[[S3Server], None]


@pytest.fixture
def sign_in(monkeypatch: pytest.MonkeyPatch) -> SignIn:
    """Make the process reach S3 as `server` says (endpoint and credentials)."""

    def use(server: S3Server) -> None:
        for name, value in server.environment().items():
            monkeypatch.setenv(name, value)
        # boto3's default session keeps the credentials it resolved first (the root's).
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)

    return use


@pytest.fixture
def stored(s3_endpoint: S3Endpoint, s3_bucket: str) -> s3.S3Uri:
    """An object that exists, in a bucket the session's root credentials own."""
    s3_endpoint.client().put_object(Bucket=s3_bucket, Key="in/model.tlt", Body=b"model")
    return s3.S3Uri(s3_bucket, "in/model.tlt")


@pytest.mark.parametrize("wrong", ["access_key", "secret_key"])
def test_wrong_credentials_are_access_denied(
    s3_endpoint: S3Endpoint, stored: s3.S3Uri, sign_in: SignIn, tmp_path: Path, wrong: str
) -> None:
    sign_in(dataclasses.replace(s3_endpoint, **{wrong: f"wrong-{uuid.uuid4().hex[:8]}"}))
    code = {"access_key": "InvalidAccessKeyId", "secret_key": "SignatureDoesNotMatch"}[wrong]

    with pytest.raises(AccessDeniedError) as read:
        s3.download(stored, tmp_path / "model.tlt")
    assert not isinstance(read.value, NotFoundError | OutputNotWritableError)
    assert (read.value.exit_code, read.value.reason) == (2, "InvalidInput")
    assert str(read.value).startswith(f"cannot read {stored}: An error occurred (")

    with pytest.raises(AccessDeniedError) as listed:
        s3.list_directory(s3.S3Uri(stored.bucket, "in/"))
    assert str(listed.value).startswith(
        f"cannot list s3://{stored.bucket}/in/: An error occurred ({code}) when calling "
        "the ListObjectsV2 operation: "
    )

    # A HEAD's refusal has no body: a bare 403.
    with pytest.raises(AccessDeniedError) as head:
        s3.exists(stored)
    assert str(head.value) == (
        f"cannot read {stored}: An error occurred (403) when calling the HeadObject "
        "operation: Forbidden"
    )

    with pytest.raises(WriteDeniedError) as written:
        s3.check_writable(s3.S3Uri(stored.bucket, "out/"))
    assert isinstance(written.value, AccessDeniedError | OutputNotWritableError)
    assert (written.value.exit_code, written.value.reason) == (2, "OutputNotWritable")
    assert str(written.value).startswith(f"cannot write to s3://{stored.bucket}/out/: {code}: ")


def test_a_tenant_without_the_grant_is_access_denied(
    s3_endpoint: S3Endpoint, stored: s3.S3Uri, sign_in: SignIn, tmp_path: Path
) -> None:
    """Valid credentials S3 refuses for this bucket: reading nothing, writing nothing."""
    sign_in(add_tenant(s3_endpoint, f"elsewhere-{uuid.uuid4().hex[:8]}"))

    with pytest.raises(AccessDeniedError) as read:
        s3.download(stored, tmp_path / "model.tlt")
    assert (read.value.exit_code, read.value.reason) == (2, "InvalidInput")
    assert str(read.value).startswith(f"cannot read {stored}: An error occurred (403) ")

    out = s3.S3Uri(stored.bucket, "out/bpnet.etlt")
    (tmp_path / "bpnet.etlt").write_bytes(b"engine")
    with pytest.raises(WriteDeniedError) as upload:
        s3.upload(tmp_path / "bpnet.etlt", out)
    assert (upload.value.exit_code, upload.value.reason) == (2, "OutputNotWritable")
    assert str(upload.value).startswith(f"cannot write {out}: access denied (")
    assert str(upload.value).endswith("): the credentials may not write there")
    assert str(tmp_path) not in str(upload.value)  # never the local file's name

    with pytest.raises(WriteDeniedError) as probe:
        s3.check_writable(out)
    assert str(probe.value).startswith(f"cannot write to {out}: access denied (")


def test_a_read_only_tenant_may_read_but_writing_is_access_denied(
    s3_endpoint: S3Endpoint, stored: s3.S3Uri, sign_in: SignIn, tmp_path: Path
) -> None:
    reader = add_tenant(s3_endpoint, f"reader-{uuid.uuid4().hex[:8]}", read_only=(stored.bucket,))
    sign_in(reader)
    s3.download(stored, tmp_path / "model.tlt")
    assert (tmp_path / "model.tlt").read_bytes() == b"model"
    with pytest.raises(WriteDeniedError) as deleted:
        s3.delete(stored)
    assert (deleted.value.exit_code, deleted.value.reason) == (2, "OutputNotWritable")
    assert str(deleted.value).startswith(f"cannot delete {stored}: An error occurred (")


def test_a_missing_key_or_bucket_is_missing(
    stored: s3.S3Uri, sign_in: SignIn, s3_endpoint: S3Endpoint, tmp_path: Path
) -> None:
    sign_in(s3_endpoint)
    key = s3.S3Uri(stored.bucket, "in/no-such.tlt")
    with pytest.raises(MissingError) as no_key:
        s3.download(key, tmp_path / "x")
    assert isinstance(no_key.value, NotFoundError)
    assert (no_key.value.exit_code, no_key.value.reason) == (2, "NotFound")
    assert str(no_key.value) == f"{key} does not exist"
    assert s3.exists(key) is False
    assert s3.list_directory(s3.S3Uri(stored.bucket, "nothing-here/")) == []

    bucket = f"no-such-{uuid.uuid4().hex[:8]}"
    gone = s3.S3Uri(bucket, "in/model.tlt")
    # A download starts with a HEAD, whose 404 has no body to say which is missing.
    with pytest.raises(MissingError) as no_bucket:
        s3.download(gone, tmp_path / "x")
    assert str(no_bucket.value) == f"{gone} does not exist"
    with pytest.raises(MissingError) as no_bucket:
        s3.list_directory(gone)
    assert no_bucket.value.reason == "NotFound"
    assert str(no_bucket.value) == f"{gone}: bucket {bucket!r} does not exist"

    (tmp_path / "bpnet.etlt").write_bytes(b"engine")
    with pytest.raises(WriteTargetMissingError) as upload:
        s3.upload(tmp_path / "bpnet.etlt", gone)
    assert isinstance(upload.value, MissingError | OutputNotWritableError)
    assert (upload.value.exit_code, upload.value.reason) == (2, "OutputNotWritable")
    assert str(upload.value) == f"cannot write {gone}: the bucket does not exist"
    with pytest.raises(WriteTargetMissingError) as probe:
        s3.check_writable(gone)
    assert str(probe.value) == f"cannot write to {gone}: the bucket does not exist"


def test_a_closed_port_is_unreachable(
    s3_endpoint: S3Endpoint, sign_in: SignIn, tmp_path: Path
) -> None:
    # A loopback port nobody listens on: the connection is refused at once.
    sign_in(dataclasses.replace(s3_endpoint, url=f"http://127.0.0.1:{free_port()}"))
    uri = s3.S3Uri("bucket", "in/model.tlt")
    for call, verb in (
        (lambda: s3.download(uri, tmp_path / "x"), "read"),
        (lambda: s3.exists(uri), "read"),
        (lambda: s3.list_directory(uri), "list"),
    ):
        with pytest.raises(UnreachableError) as away:
            call()
        assert isinstance(away.value, StorageUnavailableError), verb
        # Not the user's input: 75 (EX_TEMPFAIL), which the operator's Jobs retry.
        assert (away.value.exit_code, away.value.reason) == (75, "S3Unreachable")
        assert str(away.value).startswith(
            f"cannot reach the S3 endpoint for {uri}: Could not connect to the endpoint URL"
        )

    (tmp_path / "bpnet.etlt").write_bytes(b"engine")
    with pytest.raises(UnreachableError) as upload:
        s3.upload(tmp_path / "bpnet.etlt", uri)
    assert upload.value.reason == "S3Unreachable"
    assert str(upload.value).startswith(f"cannot write {uri}: the S3 endpoint did not answer (")
    with pytest.raises(UnreachableError) as probe:
        s3.check_writable(uri)
    assert str(probe.value).startswith(f"cannot reach the S3 endpoint for {uri}: ")
    with pytest.raises(UnreachableError) as deleted:
        s3.delete(uri)
    assert str(deleted.value).startswith(f"cannot delete {uri}: Could not connect")


def test_s3_going_away_while_a_set_replaces_its_manifest_is_retried_not_refused(
    s3_endpoint: S3Endpoint, s3_bucket: str, sign_in: SignIn
) -> None:
    """The set withdraws the manifest before it publishes: S3 away at that moment is
    S3Unreachable (exit 75, a Job retries it), never OutputNotWritable (exit 2, which the
    operator's pod failure policy fails for good)."""
    from bodypose_exporter.storage.outputs import OutputSet

    sign_in(s3_endpoint)
    prefix = f"s3://{s3_bucket}/out/{uuid.uuid4().hex[:8]}"
    outputs = OutputSet(f"{prefix}/bpnet_model.etlt")  # S3 answers: the set opens
    for name in ("bpnet_model.etlt", "manifest.json"):
        outputs.staged(name).write_bytes(b"x")
    sign_in(dataclasses.replace(s3_endpoint, url=f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(UnreachableError) as away:
        outputs.publish(["bpnet_model.etlt", "manifest.json"])
    assert (away.value.exit_code, away.value.reason) == (75, "S3Unreachable")
    assert str(away.value).startswith(f"cannot replace {prefix}/manifest.json: ")
