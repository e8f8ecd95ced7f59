"""S3 access through boto3, configured only by the standard AWS environment.

The endpoint comes from `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3` (boto3 reads
them itself since 1.28), credentials from the usual chain. Nothing here knows
whether the far side is AWS, MinIO or a test server.

This is the one place S3's error codes are read: a failure leaves as one of the types
in `storage.errors` (access denied, missing, unreachable), which callers branch on.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
from boto3.exceptions import S3UploadFailedError
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, HTTPClientError

from bodypose_exporter.errors import OutputNotWritableError, UserError
from bodypose_exporter.storage.errors import (
    AccessDeniedError,
    MissingError,
    UnreachableError,
    WriteDeniedError,
    WriteTargetMissingError,
)


@dataclass(frozen=True)
class S3Uri:
    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str) -> S3Uri:
        if not uri.startswith("s3://"):
            raise UserError(f"not an s3:// URI: {uri!r}")
        bucket, _, key = uri[len("s3://") :].partition("/")
        if not bucket:
            raise UserError(f"s3 URI without a bucket: {uri!r}")
        return cls(bucket, key)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def prefix(self) -> str:
        """The key as a 'directory' prefix: empty, or ending in '/'."""
        return self.key if self.key.endswith("/") or not self.key else f"{self.key}/"

    def child(self, name: str) -> S3Uri:
        """The object `name` inside this URI taken as a 'directory'."""
        return S3Uri(self.bucket, self.prefix() + name)

    def sibling(self, name: str) -> S3Uri:
        """The object `name` in the same 'directory' as this one."""
        prefix = self.key.rpartition("/")[0]
        return S3Uri(self.bucket, f"{prefix}/{name}" if prefix else name)


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


#: The environment a client is made from: a change (a test's other MinIO) makes another.
_CLIENT_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
)


def client() -> Any:
    """The process's S3 client (boto3 clients are thread-safe and pool their connections),
    made anew only when the AWS environment it was made from changes."""
    return _client(tuple(os.environ.get(name) for name in _CLIENT_ENV))


@functools.lru_cache(maxsize=4)
def _client(environment: tuple[str | None, ...]) -> Any:
    del environment  # the cache key; boto3 reads the variables itself
    # Bounded retries: an unreachable endpoint must fail in seconds, not minutes.
    return boto3.client(
        "s3", config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5)
    )


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


#: A missing key: S3's NoSuchKey, or a HEAD's bare 404 (a HEAD response has no body).
_MISSING_KEY = ("404", "NoSuchKey", "NotFound")
#: Refusals of the credentials (a HEAD's is a bare 403; any HTTP 403 counts too).
_DENIED = ("AccessDenied", "403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch")


def _denied(exc: ClientError) -> bool:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return _error_code(exc) in _DENIED or status == 403


@contextmanager
def _reading(uri: S3Uri, verb: str = "read") -> Iterator[None]:
    """S3 failures while reading `uri` as the typed UserError a user can act on."""
    try:
        yield
    except ClientError as exc:
        if _error_code(exc) == "NoSuchBucket":
            raise MissingError(f"{uri}: bucket {uri.bucket!r} does not exist") from exc
        if _error_code(exc) in _MISSING_KEY:
            raise MissingError(f"{uri} does not exist") from exc
        if _transient(exc):
            raise UnreachableError(f"cannot {verb} {uri}: {exc}") from exc
        if _denied(exc):
            raise AccessDeniedError(f"cannot {verb} {uri}: {exc}") from exc
        raise UserError(f"cannot {verb} {uri}: {exc}") from exc
    except BotoCoreError as exc:
        if _transient(exc):
            raise UnreachableError(f"cannot reach the S3 endpoint for {uri}: {exc}") from exc
        raise UserError(f"cannot {verb} {uri}: {exc}") from exc


def download(uri: S3Uri, dst: Path) -> None:
    """Fetch one object; a missing bucket or key is a MissingError naming the URI."""
    with _reading(uri):
        client().download_file(uri.bucket, uri.key, str(dst))


_TRANSIENT_CODES = ("InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout",
                    "500", "502", "503", "504")  # fmt: skip


def _transient(exc: BaseException) -> bool:
    """S3 away rather than saying no: an endpoint that did not answer, or a 5xx."""
    for inner in (exc, exc.__cause__, exc.__context__):
        if isinstance(inner, botocore.exceptions.ConnectionError | HTTPClientError):
            return True
        if isinstance(inner, ClientError) and _error_code(inner) in _TRANSIENT_CODES:
            return True
    return False


def _client_error(exc: Exception) -> ClientError | None:
    """What S3 said: the error itself, or the ClientError boto3's S3UploadFailedError wraps."""
    cause = exc.__cause__ or exc.__context__
    inner = cause if isinstance(cause, ClientError) else exc
    return inner if isinstance(inner, ClientError) else None


def _write_refusal(exc: Exception) -> str:
    """Why S3 refused a write, without the local file's name: boto3's S3UploadFailedError
    names the pod's scratch path, which means nothing to the user (the ClientError it
    wraps says what S3 said)."""
    inner = _client_error(exc)
    if inner is not None:
        code = _error_code(inner)
        said = inner.response.get("Error", {}).get("Message") or code
        if code in ("AccessDenied", "403"):
            return f"access denied ({said}): the credentials may not write there"
        if code == "NoSuchBucket":
            return "the bucket does not exist"
        return f"{code}: {said}"
    return str(exc)


def _refused_write(exc: Exception) -> type[OutputNotWritableError]:
    """The type of a write S3 refused (not transient): denied, no bucket, or another no."""
    inner = _client_error(exc)
    if inner is not None and _denied(inner):
        return WriteDeniedError
    if inner is not None and _error_code(inner) == "NoSuchBucket":
        return WriteTargetMissingError
    return OutputNotWritableError


def upload(src: Path, uri: S3Uri) -> None:
    try:
        client().upload_file(str(src), uri.bucket, uri.key)
    except (ClientError, S3UploadFailedError, EndpointConnectionError, BotoCoreError) as exc:
        if _transient(exc):
            raise UnreachableError(
                f"cannot write {uri}: the S3 endpoint did not answer ({_write_refusal(exc)})"
            ) from exc
        raise _refused_write(exc)(f"cannot write {uri}: {_write_refusal(exc)}") from exc


def check_writable(uri: S3Uri) -> None:
    """Fail early, before hours of work, if the output cannot be written: a bucket that
    is not there, or credentials that may read but not write (a zero-byte probe object,
    written then removed; a HEAD of the bucket passes for read-only credentials)."""
    probe = uri.child(".bodypose-write-probe")
    try:
        client().put_object(Bucket=probe.bucket, Key=probe.key, Body=b"")
        client().delete_object(Bucket=probe.bucket, Key=probe.key)
    except (ClientError, EndpointConnectionError, BotoCoreError) as exc:
        if _transient(exc):
            raise UnreachableError(
                f"cannot reach the S3 endpoint for {uri}: {_write_refusal(exc)}"
            ) from exc
        raise _refused_write(exc)(f"cannot write to {uri}: {_write_refusal(exc)}") from exc


def delete(uri: S3Uri) -> None:
    """Remove one object (absent is fine); a refusal is an OutputNotWritableError naming it."""
    try:
        client().delete_object(Bucket=uri.bucket, Key=uri.key)
    except (ClientError, EndpointConnectionError, BotoCoreError) as exc:
        if _transient(exc):
            raise UnreachableError(f"cannot delete {uri}: {exc}") from exc
        raise _refused_write(exc)(f"cannot delete {uri}: {exc}") from exc


def exists(uri: S3Uri) -> bool:
    """Whether the object exists; other failures (no endpoint, no access) are errors."""
    with _reading(uri):
        try:
            client().head_object(Bucket=uri.bucket, Key=uri.key)
        except ClientError as exc:
            if _error_code(exc) in _MISSING_KEY:
                return False
            raise
    return True


def list_directory(uri: S3Uri) -> list[str]:
    """Names of the objects directly under the prefix `uri` (one level, like a directory)."""
    prefix = uri.prefix()
    names: list[str] = []
    with _reading(uri, "list"):
        pages = client().get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=uri.bucket, Prefix=prefix, Delimiter="/"):
            names += [obj["Key"][len(prefix) :] for obj in page.get("Contents", [])]
    return [name for name in names if name]
