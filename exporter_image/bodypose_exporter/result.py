"""The short JSON result a Job's pod leaves as its termination message.

Kubernetes reads a container's termination message from
`terminationMessagePath` (default /dev/termination-log) and caps it at 4096
bytes, so the result names artifacts and figures, never file contents. The
path comes from `BODYPOSE_TERMINATION_LOG` so the CLI writes nothing outside a
Job.
"""

from __future__ import annotations

import json
import os
from typing import Any

ENV_VAR = "BODYPOSE_TERMINATION_LOG"
MAX_BYTES = 4096


def _write(payload: dict[str, Any]) -> None:
    path = os.environ.get(ENV_VAR)
    if not path:
        return
    text = _encode(payload)
    if len(text.encode()) > MAX_BYTES:
        payload = {k: payload[k] for k in ("stage", "ok", "reason", "message") if k in payload}
        payload["truncated"] = True
        text = _encode(payload)
        # Shorten the message, never the JSON: a report cut mid-string is no report, and
        # the kubelet keeps only the last 4096 bytes. Non-ASCII text escapes to 6 bytes a
        # character, so measure bytes, not characters.
        message = str(payload.get("message", ""))
        keep = len(message)
        while len(text.encode()) > MAX_BYTES and keep > 0:
            keep = max(0, keep - max((len(text.encode()) - MAX_BYTES) // 6, 1))
            payload["message"] = message[:keep] + "…"
            text = _encode(payload)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _encode(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"))


#: What of a manifest's `evaluation` the result carries: the figures a status shows per
#: target (AP points), without the operator reading the manifest from S3.
EVALUATION_KEYS = ("images", "people", "figures", "reference", "apDrop", "maxApDrop", "passed")


def report_success(stage: str, manifest: dict[str, Any]) -> None:
    payload: dict[str, Any] = {
        "stage": stage,
        "ok": True,
        "artifacts": [
            {"kind": a["kind"], "path": a["path"], "sha256": a["sha256"], "bytes": a["bytes"]}
            for a in manifest.get("artifacts", [])
        ],
    }
    evaluation = manifest.get("evaluation")
    if evaluation:
        payload["evaluation"] = {k: evaluation[k] for k in EVALUATION_KEYS if k in evaluation}
    _write(payload)


def report_failure(stage: str, reason: str, message: str) -> None:
    _write({"stage": stage, "ok": False, "reason": reason, "message": message[:1000]})
