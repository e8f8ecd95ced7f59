"""Reading what a Job's pod says: its termination message and why it is stuck.

The exporter writes a short JSON result to its termination message
(`bodypose_exporter.result`); Kubernetes copies it into
`status.containerStatuses[].state.terminated.message`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PodReport:
    """What the operator needs from a Job's pods."""

    result: dict[str, Any] | None = None  # the termination message, parsed
    waiting_reason: str | None = None  # e.g. CreateContainerConfigError
    waiting_message: str | None = None
    unschedulable_message: str | None = None
    exit_code: int | None = None


def _parse_message(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        # FallbackToLogsOnError: the log tail of a crash, not our JSON.
        return {"ok": False, "reason": "Crashed", "message": text.strip()[-500:]}
    return parsed if isinstance(parsed, dict) else None


def report(pods: list[Any]) -> PodReport:
    """Summarise the newest pod of a Job (kubernetes client V1Pod objects)."""
    if not pods:
        return PodReport()
    pod = max(pods, key=lambda p: p.metadata.creation_timestamp)
    result = waiting_reason = waiting_message = unschedulable = None
    exit_code = None
    for cs in pod.status.container_statuses or []:
        state = cs.state
        if state and state.terminated:
            result = _parse_message(state.terminated.message)
            exit_code = state.terminated.exit_code
        elif state and state.waiting and state.waiting.reason not in (None, "ContainerCreating"):
            waiting_reason, waiting_message = state.waiting.reason, state.waiting.message
    for cond in pod.status.conditions or []:
        if (
            cond.type == "PodScheduled"
            and cond.status == "False"
            and cond.reason == "Unschedulable"
        ):
            unschedulable = cond.message
    return PodReport(result, waiting_reason, waiting_message, unschedulable, exit_code)
