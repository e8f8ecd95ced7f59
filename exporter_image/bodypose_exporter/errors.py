"""Errors a user can act on.

Everything raised as a `UserError` reaches the user as one line (CLI) or as a
condition message (operator) without a traceback; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input or environment that the user can fix; the message says how."""

    #: Process exit code used by the CLI; distinct codes let a Job's controller
    #: tell input errors from crashes without parsing text.
    exit_code = 2
    #: Short CamelCase reason, used in termination messages and status conditions.
    reason = "InvalidInput"


class WrongKeyError(UserError):
    """The model could not be decrypted with the given key."""

    reason = "WrongKey"


class NotATaoModelError(UserError):
    """The file is not a TAO model (.tlt/.etlt) at all."""

    reason = "NotATaoModel"


class CorruptModelError(UserError):
    """The file decrypts but its content is truncated or damaged."""

    reason = "CorruptModel"


class NotFoundError(UserError):
    """A named input (path or S3 object) does not exist."""

    reason = "NotFound"


class OutputNotWritableError(UserError):
    """The output location cannot be written."""

    reason = "OutputNotWritable"


class StorageUnavailableError(UserError):
    """S3 did not answer (connection refused or cut, a timeout, a 5xx): not the user's
    input, and the same run a moment later may succeed, so a Job retries it (exit 75,
    EX_TEMPFAIL, is not one of the codes the operator's pod failure policy fails at once)."""

    reason = "S3Unreachable"
    exit_code = 75


class NotAvailableYetError(UserError):
    """A flag whose work this version does not do yet; never silently ignored."""

    reason = "NotAvailable"


class FidelityError(UserError):
    """The converted model does not reproduce the source model's outputs."""

    reason = "FidelityCheckFailed"
    exit_code = 3
