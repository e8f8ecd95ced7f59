"""Running the image tools: their errors, their environment, what they say."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from typing import IO

TOOLS = ("buildah", "mmdebstrap", "umoci", "skopeo")


class ImageBuildError(Exception):
    """A step failed; the message is what `make images` prints (no traceback)."""


def say(progress: IO[str] | None, line: str) -> None:
    if progress is not None:
        progress.write(line + "\n")
        progress.flush()


def clean_env() -> dict[str, str]:
    """The host's environment minus pip's settings (find-links, timeouts, ...)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}


def run(cmd: Sequence[str], *, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        list(cmd),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env if env is not None else clean_env(),
        check=False,
    )
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-20:]
        raise ImageBuildError(f"`{shlex.join(cmd)}` failed:\n" + "\n".join(detail))
    return proc.stdout


def ensure_tools(progress: IO[str] | None = None) -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        raise ImageBuildError(
            f"make images needs {', '.join(missing)}; installing them takes root: "
            f"sudo apt-get install -y {' '.join(missing)}"
        )
    if shutil.which("apt-get") is None:
        raise ImageBuildError(f"make images needs {', '.join(missing)} and there is no apt-get")
    say(progress, f"installing {' '.join(missing)} with apt-get (running as root)")
    env = {**clean_env(), "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-q"], env=env)
    run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], env=env)


def human(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit in ("B", "kB") else f"{value:.2f} {unit}"
        value /= 1000
    return f"{size} B"
