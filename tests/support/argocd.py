"""The chart's Argo CD health check, run the way Argo CD runs it, by a real Lua interpreter.

`health(resource)` evaluates `charts/bodypose-operator/argocd/health.lua` with
`obj` set to the resource and returns its (status, message).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

HEALTH = (
    Path(__file__).resolve().parents[2] / "charts" / "bodypose-operator" / "argocd" / "health.lua"
)
#: None on a machine without Lua (`make tools` installs lua5.4).
LUA = shutil.which("lua5.4") or shutil.which("lua")


def lua_literal(value: Any) -> str:
    """A Python value as a Lua table constructor (what Argo CD hands the script)."""
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"[{json.dumps(k)}] = {lua_literal(v)}" for k, v in value.items()) + "}"
        )
    if isinstance(value, list):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nil"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))


def health(resource: dict[str, Any]) -> tuple[str, str]:
    assert LUA is not None
    program = (
        f"obj = {lua_literal(resource)}\n"
        f"local hs = dofile({json.dumps(str(HEALTH))})\n"
        "io.write(hs.status, '\\n', hs.message)\n"
    )
    done = subprocess.run([LUA, "-"], input=program, capture_output=True, text=True, check=True)
    status, _, message = done.stdout.partition("\n")
    return status, message
