"""The Job's JSON termination message, version 1: what a stage's pod reports in 4096 bytes.

Kubernetes reads a container's termination message from `terminationMessagePath`
and caps it at 4096 bytes, so the result names artifacts and figures, never file
contents. The exporter writes it (`bodypose_exporter/result.py`); the operator
reads it when the Job's watch event says it finished (`controller/pods.py`,
`controller/stage_state.py`). The keys below are the wire format of version 1;
a reader of version 1 must keep reading what a later version writes.
"""

from __future__ import annotations

from typing import TypedDict

from bodypose_contract.manifest import ArtifactEntry

VERSION = 1
#: Where the exporter writes it; unset outside a Job (the CLI then writes nothing).
ENV_VAR = "BODYPOSE_TERMINATION_LOG"
#: The kubelet keeps at most this many bytes of a termination message.
MAX_BYTES = 4096
#: The keys kept when a result is too long (`truncated` is then True).
ESSENTIAL_KEYS = ("stage", "ok", "reason", "message")
#: What of a manifest's `evaluation` the result carries: the figures a status shows per
#: target, without the operator reading the manifest from S3.
EVALUATION_KEYS = ("images", "people", "figures", "reference", "apDrop", "maxApDrop", "passed")


class TerminationMessage(TypedDict, total=False):
    """A stage's result: success with its artifacts, or failure with a reason."""

    stage: str  # export | calibrate | build | ...
    ok: bool
    reason: str  # a failure's reason (`UserError.reason`), CamelCase
    message: str  # a failure's message, for the status
    artifacts: list[ArtifactEntry]
    evaluation: dict[str, object]  # EVALUATION_KEYS of the manifest's evaluation
    truncated: bool  # the result was cut to ESSENTIAL_KEYS to fit MAX_BYTES
