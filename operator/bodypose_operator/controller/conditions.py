"""Conditions in the Kubernetes API conventions shape.

https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md#typical-status-properties
`lastTransitionTime` changes only when `status` changes, so GitOps tools and
`kubectl wait --for=condition=Ready` see real transitions, not every patch.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

READY = "Ready"
EXPORTED = "Exported"
CALIBRATED = "Calibrated"
BUILT = "Built"


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(
    conditions: list[dict[str, Any]],
    type_: str,
    status: bool | None,
    reason: str,
    message: str,
    generation: int,
) -> list[dict[str, Any]]:
    """Return `conditions` with `type_` set; keeps lastTransitionTime if status is unchanged."""
    text = {True: "True", False: "False", None: "Unknown"}[status]
    previous = next((c for c in conditions if c.get("type") == type_), None)
    since = (
        previous["lastTransitionTime"]
        if previous and previous.get("status") == text and previous.get("lastTransitionTime")
        else now()
    )
    updated = {
        "type": type_,
        "status": text,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since,
        "observedGeneration": generation,
    }
    return [c for c in conditions if c.get("type") != type_] + [updated]


def condition_status(conditions: list[dict[str, Any]], type_: str) -> str | None:
    found = next((c for c in conditions if c.get("type") == type_), None)
    return None if found is None else str(found.get("status"))
