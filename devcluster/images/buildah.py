"""buildah and its storage: overlay where the kernel allows it, else vfs."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass

from devcluster.images.commands import ImageBuildError, run


@dataclass(frozen=True)
class Storage:
    """A storage driver and graph root, as buildah's global options."""

    driver: str
    root: str | None  # None: buildah's default graph root

    def args(self) -> list[str]:
        extra = ["--root", self.root] if self.root else []
        return ["--storage-driver", self.driver, *extra]


_storage: Storage | None = None


def storage() -> Storage:
    """overlay if this kernel and sandbox let buildah mount it, else vfs.

    The probe mounts an empty working container. vfs gets a graph root of its
    own: buildah refuses a root that another driver initialised.
    """
    global _storage
    if _storage is not None:
        return _storage
    overlay = Storage("overlay", None)
    try:
        ctr = run(["buildah", *overlay.args(), "from", "scratch"]).strip().splitlines()[-1]
        try:
            run(["buildah", *overlay.args(), "mount", ctr])
        finally:
            with contextlib.suppress(ImageBuildError):
                run(["buildah", *overlay.args(), "rm", ctr])
        _storage = overlay
    except ImageBuildError:
        _storage = Storage("vfs", "/var/lib/containers/storage-vfs")
    return _storage


def run_buildah(*args: str) -> str:
    return run(["buildah", *storage().args(), *args])


def image_id(ref: str) -> str | None:
    try:
        out = run_buildah("inspect", "--type", "image", "--format", "{{.FromImageID}}", ref)
    except ImageBuildError:
        return None
    return out.strip() or None


def image_label(ref: str, label: str) -> str | None:
    try:
        out = run_buildah("inspect", "--type", "image", ref)
    except ImageBuildError:
        return None
    labels = (json.loads(out).get("OCIv1") or {}).get("config", {}).get("Labels") or {}
    value = labels.get(label)
    return str(value) if value is not None else None
