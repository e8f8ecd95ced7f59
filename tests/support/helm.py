"""The chart, and the real `helm` binary run with a clean environment."""

from __future__ import annotations

import subprocess
from pathlib import Path

CHART = Path(__file__).resolve().parents[2] / "charts" / "bodypose-operator"


def helm_run(
    helm: Path, *args: str, kubeconfig: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {"HOME": str(Path.home()), "PATH": "/usr/bin:/bin"}
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    return subprocess.run([str(helm), *args], capture_output=True, text=True, env=env, timeout=120)
