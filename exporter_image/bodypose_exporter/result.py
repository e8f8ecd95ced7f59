"""The short JSON result a Job's pod leaves as its termination message.

Its shape, the byte cap and the variable naming its path are the contract's
(`bodypose_contract/termination.py`), which the operator reads too. The path comes
from `BODYPOSE_TERMINATION_LOG` so the CLI writes nothing outside a Job.
"""

from __future__ import annotations

import json
import os
from typing import Any, cast

from bodypose_contract import termination
from bodypose_contract.termination import ENV_VAR, EVALUATION_KEYS, MAX_BYTES

__all__ = ["ENV_VAR", "EVALUATION_KEYS", "MAX_BYTES", "report_failure", "report_success"]


def _write(payload: termination.TerminationMessage) -> None:
    path = os.environ.get(ENV_VAR)
    if not path:
        return
    text = _encode(payload)
    if len(text.encode()) > MAX_BYTES:
        kept = {k: v for k, v in payload.items() if k in termination.ESSENTIAL_KEYS}
        payload = cast(termination.TerminationMessage, kept)
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


def _encode(payload: termination.TerminationMessage) -> str:
    return json.dumps(payload, separators=(",", ":"))


def report_success(stage: str, manifest: dict[str, Any]) -> None:
    payload: termination.TerminationMessage = {
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
