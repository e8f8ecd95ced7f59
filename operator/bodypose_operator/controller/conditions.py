"""Conditions in the Kubernetes API conventions shape, and kstatus' abnormal-true pair.

`Reconciling` (True while work is under way) and `Stalled` (True on a failure
that needs a spec change) follow cli-utils kstatus (pkg/kstatus/README.md,
"Conditions"): they are abnormal-true conditions, present only while they
hold, so `kstatus`, Flux and kpt read InProgress, Failed and Current from them.

https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md#typical-status-properties
`lastTransitionTime` changes only when `status` changes, so GitOps tools and
`kubectl wait --for=condition=Ready` see real transitions, not every patch.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

READY = "Ready"
# The pair kstatus (sigs.k8s.io/cli-utils/pkg/kstatus), Flux and kpt read: present and
# True only while they hold, removed (not set False) when they stop holding.
RECONCILING = "Reconciling"
STALLED = "Stalled"
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


def remove_condition(conditions: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [c for c in conditions if c.get("type") != type_]


def condition_status(conditions: list[dict[str, Any]], type_: str) -> str | None:
    found = next((c for c in conditions if c.get("type") == type_), None)
    return None if found is None else str(found.get("status"))
