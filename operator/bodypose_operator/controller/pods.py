"""Reading what a Job's pod says: its termination message and why it is stuck.

The exporter writes a short JSON result to its termination message
(`bodypose_exporter.result`); Kubernetes copies it into
`status.containerStatuses[].state.terminated.message`.

Two ways a container never gets to run our program, each reported with the
image it concerns: its image cannot be pulled (the container waits with
ErrImagePull or ImagePullBackOff, and the kubelet retries), or the runtime
cannot start it (terminated with StartError or ContainerCannotRun, exit code
127 or 128, the runtime's text in place of our JSON result, e.g. `exec:
"bpnet-build": executable file not found in $PATH`).

Every text a pod reported (the termination message, our JSON result's strings, the
log tail the kubelet takes under `FallbackToLogsOnError`, the kubelet's and the
runtime's messages) is redacted (controller/redact.py) with the credentials the
operator knows of before anything keeps it: the report is what status and events
are made from.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Any, cast

from bodypose_contract.termination import TerminationMessage
from bodypose_operator.controller.redact import redact, redact_result

# Waiting reasons of a container whose image the kubelet cannot pull.
PULL_FAILURES = frozenset({"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull"})
# Terminated reasons (containerd/CRI-O, Docker) of a container the runtime could not start.
START_FAILURES = frozenset({"StartError", "ContainerCannotRun"})
START_FAILURE_EXIT_CODES = frozenset({127, 128})


@dataclass(frozen=True)
class ImagePullFailure:
    image: str
    reason: str  # ErrImagePull | ImagePullBackOff | ErrImageNeverPull
    message: str  # the kubelet's


@dataclass(frozen=True)
class StartFailure:
    image: str
    exit_code: int
    message: str  # the runtime's


@dataclass(frozen=True)
class PodReport:
    """What the operator needs from a Job's pods."""

    #: The termination message, parsed (`bodypose_contract.termination`), or None.
    result: TerminationMessage | None = None
    waiting_reason: str | None = None  # e.g. CreateContainerConfigError
    waiting_message: str | None = None
    unschedulable_message: str | None = None
    exit_code: int | None = None
    image_pull: ImagePullFailure | None = None  # the newest pod's
    start_failure: StartFailure | None = None  # any pod's: a retry would fail the same way
    #: (reason, message) of the newest pod that failed: what the Job's last retry was for.
    last_failure: tuple[str, str] | None = None


def _parse_message(text: str | None) -> TerminationMessage | None:
    if not text:
        return None
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        # FallbackToLogsOnError: the log tail of a crash, not our JSON.
        return {"ok": False, "reason": "Crashed", "message": text.strip()[-500:]}
    return cast(TerminationMessage, parsed) if isinstance(parsed, dict) else None


def _is_result(text: str) -> bool:
    """Whether a termination message is our JSON result (not a runtime's or a log's text)."""
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def _image(pod: Any, status: Any) -> str:
    """The image the pod's spec names for a container (the status may hold a resolved one)."""
    spec = getattr(pod, "spec", None)
    for container in getattr(spec, "containers", None) or []:
        if container.name == status.name and container.image:
            return str(container.image)
    return str(status.image or "?")


def _start_failure(pod: Any) -> StartFailure | None:
    for cs in pod.status.container_statuses or []:
        term = cs.state.terminated if cs.state else None
        if term is None:
            continue
        text = (term.message or "").strip()
        if _is_result(text):
            continue
        if term.reason in START_FAILURES or term.exit_code in START_FAILURE_EXIT_CODES:
            return StartFailure(_image(pod, cs), term.exit_code, text[-500:] or str(term.reason))
    return None


#: Conditions and reasons of a pod that failed through no fault of its own (Kubernetes'
#: DisruptionTarget condition: evicted, preempted, lost with its node; kubelet's Evicted).
DISRUPTION_CONDITION = "DisruptionTarget"


def failure_of(pod: Any) -> tuple[str, str] | None:
    """(reason, message) of a failed pod: our result's, the cluster's disruption, else the
    exit code; None for a pod that has not failed."""
    status = pod.status
    for cond in status.conditions or []:
        if cond.type == DISRUPTION_CONDITION and cond.status == "True":
            return str(cond.reason or "Disrupted"), str(cond.message or "the pod was disrupted")
    if status.phase != "Failed":
        return None
    if status.reason:  # the kubelet's, e.g. Evicted
        return str(status.reason), str(status.message or "")
    for cs in status.container_statuses or []:
        term = cs.state.terminated if cs.state else None
        if term is None:
            continue
        result = _parse_message(term.message) or {}
        if result.get("reason"):
            return str(result["reason"]), str(result.get("message") or "")
        return str(term.reason or "Error"), f"exit code {term.exit_code}"
    return "PodFailed", "the pod failed"


def report(pods: list[Any], secrets: Collection[str] = ()) -> PodReport:
    """Summarise the newest pod of a Job (kubernetes client V1Pod objects), every text in
    it redacted with `secrets` (the credential values the operator knows of) and
    `redact`'s patterns."""
    return _redacted(_report(pods), secrets)


def _redacted(found: PodReport, secrets: Collection[str]) -> PodReport:
    def text(value: str | None) -> str | None:
        return None if value is None else redact(value, secrets)

    return replace(
        found,
        result=redact_result(found.result, secrets),
        waiting_message=text(found.waiting_message),
        unschedulable_message=text(found.unschedulable_message),
        image_pull=found.image_pull
        and replace(found.image_pull, message=redact(found.image_pull.message, secrets)),
        start_failure=found.start_failure
        and replace(found.start_failure, message=redact(found.start_failure.message, secrets)),
        last_failure=found.last_failure
        and (found.last_failure[0], redact(found.last_failure[1], secrets)),
    )


def _report(pods: list[Any]) -> PodReport:
    if not pods:
        return PodReport()
    newest_first = sorted(pods, key=lambda p: p.metadata.creation_timestamp, reverse=True)
    pod = newest_first[0]
    result = waiting_reason = waiting_message = unschedulable = None
    exit_code = None
    image_pull = None
    for cs in pod.status.container_statuses or []:
        state = cs.state
        if state and state.terminated:
            result = _parse_message(state.terminated.message)
            exit_code = state.terminated.exit_code
        elif state and state.waiting and state.waiting.reason not in (None, "ContainerCreating"):
            waiting_reason, waiting_message = state.waiting.reason, state.waiting.message
            if waiting_reason in PULL_FAILURES:
                image_pull = ImagePullFailure(
                    _image(pod, cs), waiting_reason, (waiting_message or "").strip()
                )
    for cond in pod.status.conditions or []:
        if (
            cond.type == "PodScheduled"
            and cond.status == "False"
            and cond.reason == "Unschedulable"
        ):
            unschedulable = cond.message
    start_failure = next(filter(None, map(_start_failure, newest_first)), None)
    last_failure = next(filter(None, map(failure_of, newest_first)), None)
    return PodReport(
        result, waiting_reason, waiting_message, unschedulable, exit_code, image_pull,
        start_failure, last_failure,
    )  # fmt: skip
