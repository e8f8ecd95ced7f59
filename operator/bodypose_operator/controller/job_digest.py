"""What of a Job a reconcile pass reads: two Jobs with the same digest decide the same.

A Job's watch events are many (the Job controller writes its status when it makes
the pod, when the pod is bound, when it counts it...), and most change nothing the
pass reads: observe and decide look at whether it ended (succeeded, or a Failed
condition), whether a pod is ready, how many pods failed, whether it is suspended,
its labels (content key, stage, queue) and whether it is being deleted. The service
(controller/service.py) skips the pass of an event whose Job has the digest the
last complete pass saw of it. When a Job that has not started is due a look is a
matter of time, not of its events: the service's scheduled checks cover it (a check
reads the Job afresh).

Works on a watch event's body or a manifest (plain dicts, camelCase) and on the
kubernetes client's V1Job the pass lists (snake_case attributes), which must agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: (ended: Succeeded | Failed | Active, a pod ready, pods failed, suspended, labels,
#:  being deleted)
Digest = tuple[str, bool, int, bool, tuple[tuple[str, str], ...], bool]


def _get(obj: Any, camel: str, snake: str) -> Any:
    """A field of a dict (camelCase) or of a kubernetes client model (snake_case)."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(camel)
    return getattr(obj, snake, None)


def _ended(status: Any) -> str:
    """As controller/job_status.py's `job_state` reads it."""
    if _get(status, "succeeded", "succeeded"):
        return "Succeeded"
    for cond in _get(status, "conditions", "conditions") or []:
        if _get(cond, "type", "type") == "Failed" and _get(cond, "status", "status") == "True":
            return "Failed"
    return "Active"


def job_digest(job: Any) -> Digest:
    meta = _get(job, "metadata", "metadata")
    status = _get(job, "status", "status")
    labels = _get(meta, "labels", "labels") or {}
    return (
        _ended(status),
        bool(_get(status, "ready", "ready") or _get(status, "succeeded", "succeeded")),
        int(_get(status, "failed", "failed") or 0),
        bool(_get(_get(job, "spec", "spec"), "suspend", "suspend")),
        tuple(sorted((str(k), str(v)) for k, v in labels.items())),
        _get(meta, "deletionTimestamp", "deletion_timestamp") is not None,
    )


def job_name(job: Any) -> str:
    return str(_get(_get(job, "metadata", "metadata"), "name", "name"))
