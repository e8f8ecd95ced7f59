"""The pod and container statuses a kubelet posts, as strategic-merge-patch bodies."""

from __future__ import annotations

import datetime as dt
from typing import Any


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def state(kind: str, **fields: Any) -> dict[str, Any]:
    """A container state. The other two kinds are nulled, so that the strategic
    merge patch replaces the previous state instead of merging into it."""
    return {k: (fields if k == kind else None) for k in ("waiting", "running", "terminated")}


def container_status(
    container: Any, state: dict[str, Any], restarts: int = 0, *, ready: bool = False,
    started: bool = False, image_id: str = "", **extra: Any,
) -> dict[str, Any]:  # fmt: skip
    return {
        "name": container.name, "image": container.image, "imageID": image_id,
        "ready": ready, "started": started, "restartCount": restarts, "state": state, **extra,
    }  # fmt: skip


def pod_failed(reason: str, message: str) -> dict[str, Any]:
    return {"phase": "Failed", "reason": reason, "message": message,
            **conditions(ready=False, reason="PodCompleted")}  # fmt: skip


def conditions(
    *, ready: bool, reason: str | None = None, initialized: bool = True
) -> dict[str, Any]:
    stamp = now()
    found = [
        {"type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": stamp},
        {"type": "Initialized", "status": str(initialized), "lastTransitionTime": stamp},
    ]
    for kind in ("ContainersReady", "Ready"):
        condition = {"type": kind, "status": str(ready), "lastTransitionTime": stamp}
        if reason:
            condition["reason"] = reason
        found.append(condition)
    return {"conditions": found}
