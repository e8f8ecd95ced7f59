"""No credential in what the operator keeps of a pod's words: status, events, its log.

A Job's container runs with `terminationMessagePolicy: FallbackToLogsOnError`: when it
fails without writing its JSON result, the kubelet takes the tail of its log (80 lines,
2048 bytes) as the termination message, and the operator copies that text into the
resource's status and an event, which anyone who may read the resource sees. The
exporter never logs a key, but a library's traceback, a debug line or a user's own
export image may print its environment. So before the operator keeps any text a pod
reported (controller/pods.py), it replaces

- every credential value it knows of: those of the Secret the resource names for S3
  (read for its own S3 calls, `ResourceStores.secret_values`), longest first;
- what reads as a credential whatever its value: an assignment to a variable whose name
  ends in KEY, SECRET, TOKEN or PASSWORD, optionally with _ID (`AWS_SECRET_ACCESS_KEY=...`,
  `password=...`; with a colon only a name with an underscore, `BODYPOSE_MODEL_KEY: ...`,
  `"aws_session_token": "..."`), and an AWS access key id
  (`AKIA`/`ASIA` and 16 capitals or digits, AWS's documented form:
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-unique-ids).

Pure: text and values in, text out.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

REDACTED = "[redacted]"
#: Shorter values are not replaced: a one- or two-character "secret" would blank every
#: occurrence of those characters in a message (real access keys have 16 or more).
MIN_VALUE_CHARS = 4

_ASSIGNMENT = re.compile(
    r"""(?ix)
    (\b[a-z0-9_.-]*(?:key|secret|token|password)(?:_id)?)   # the variable's name
    (["']?\s*[:=]\s*["']?)                                   # = or : and any quotes
    ([^\s"',;]+)                                             # the value
    """
)
_ACCESS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")


def redact(text: str, secrets: Collection[str] = ()) -> str:
    """`text` with every value in `secrets` and everything that reads as a credential
    replaced by "[redacted]"."""
    for value in sorted({s for s in secrets if len(s) >= MIN_VALUE_CHARS}, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    text = _ASSIGNMENT.sub(_assignment, text)
    return _ACCESS_KEY_ID.sub(REDACTED, text)


def _assignment(match: re.Match[str]) -> str:
    name, separator, value = match.groups()
    # `NAME: value` counts only for a variable's name (with an underscore): prose such as
    # argparse's "argument -k/--key: expected one argument" keeps its words.
    if value == REDACTED or (":" in separator and "_" not in name):
        return match.group(0)
    return name + separator + REDACTED


def redact_result(result: Mapping[str, object] | None, secrets: Collection[str] = ()) -> Any:
    """A pod's parsed result with its top-level texts (stage, reason, message: where a
    failure's words are) redacted; its records (artifacts' paths and digests, figures)
    are data, kept exactly as the exporter wrote them."""
    if result is None:
        return None
    return {k: redact(v, secrets) if isinstance(v, str) else v for k, v in result.items()}
