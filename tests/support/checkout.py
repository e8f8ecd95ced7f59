"""This checkout's packages, for tests that run Python in a child process."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: This checkout's packages first: the venv's editable install may be another checkout's.
PACKAGES = (ROOT / "exporter_image", ROOT / "operator", ROOT)


def python_env(**extra: str) -> dict[str, str]:
    """This process's environment, with PYTHONPATH naming this checkout's packages."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in PACKAGES), **extra}
