"""The three ways S3 fails a request, as types: callers branch on these, never on message text.

- `AccessDeniedError`: S3 refused these credentials (HTTP 403: AccessDenied,
  InvalidAccessKeyId, SignatureDoesNotMatch, a HEAD's bare 403);
- `MissingError`: no such key, or no such bucket;
- `UnreachableError`: the endpoint did not answer (connection refused or cut, a
  timeout, a 5xx), so the same request a moment later may succeed.

Each is also the `UserError` a user saw for that fault before these types existed,
so exit codes and `reason`s are unchanged: a refused or missing read is the generic
refusal (`InvalidInput`) or `NotFound`; a refused write, or a write into a bucket that
is not there, is `OutputNotWritable` (`WriteDeniedError`, `WriteTargetMissingError`,
still an `AccessDeniedError` or a `MissingError` for whoever asks which fault it was);
S3 away is `S3Unreachable`, exit 75, either way.
"""

from __future__ import annotations

from bodypose_exporter.errors import (
    NotFoundError,
    OutputNotWritableError,
    StorageUnavailableError,
    UserError,
)


class AccessDeniedError(UserError):
    """S3 refused the credentials this process has for the object or bucket."""


class MissingError(NotFoundError):
    """The key, or the whole bucket, does not exist."""


class UnreachableError(StorageUnavailableError):
    """The S3 endpoint did not answer (exit 75: a Job retries it)."""


class WriteDeniedError(AccessDeniedError, OutputNotWritableError):
    """A write S3 refused to these credentials."""

    # Both parents are UserErrors with exit code 2; the reason is the write's.
    reason = OutputNotWritableError.reason


class WriteTargetMissingError(MissingError, OutputNotWritableError):
    """A write into a bucket that does not exist."""

    reason = OutputNotWritableError.reason
