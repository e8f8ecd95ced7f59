"""What each image is made from: its Dockerfile, its refs, the version and commit it carries."""

from __future__ import annotations

import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

# The base (devcluster/images/base.py).
BASE_TAG = "localhost/bodypose-base:bookworm"
BASE_REF = "bodypose-export/base:bookworm"
BASE_SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
# Bumped when base.py's recipe changes in a way the arguments do not show.
BASE_RECIPE = "1"
BASE_KEY_LABEL = "dev.bodypose.base-key"

# Left out of the content key: they change with every commit, not with the image.
UNKEYED_ARGS = ("REVISION", "CREATED")
SOURCE_URL = "https://github.com/bodypose-export/bodypose-export"


@dataclass(frozen=True)
class ImageSpec:
    name: str
    repository: str
    dockerfile: str  # relative to REPO_ROOT, which is the build context
    built_here: bool = True
    note: str = ""


IMAGES: dict[str, ImageSpec] = {
    spec.name: spec
    for spec in (
        ImageSpec("operator", "bodypose-export/operator", "operator/Dockerfile"),
        ImageSpec("exporter", "bodypose-export/exporter", "exporter_image/Dockerfile"),
        ImageSpec(
            "exporter-gpu",
            "bodypose-export/exporter-gpu",
            "exporter_image/Dockerfile.gpu",
            built_here=False,
            note=(
                "not built here: its base, NVIDIA's TensorRT container (nvcr.io), is not "
                "reachable from this machine; build it where it is, e.g. "
                "`docker build -f exporter_image/Dockerfile.gpu .`"
            ),
        ),
    )
}
DEFAULT_NAMES = ("operator", "exporter")


def version() -> str:
    with (REPO_ROOT / "pyproject.toml").open("rb") as f:
        return str(tomllib.load(f)["project"]["version"])


def _git(*args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(REPO_ROOT), *args],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return None
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None


def revision() -> str:
    return _git("rev-parse", "HEAD") or "unknown"


def created() -> str:
    """The commit's time (reproducible across rebuilds of one commit), else the epoch."""
    stamp = _git("show", "-s", "--format=%cI", "HEAD")
    if stamp is None:
        return "1970-01-01T00:00:00Z"
    return stamp
