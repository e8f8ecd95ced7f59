"""The Debian base image: mmdebstrap minbase + python3, in buildah and as an OCI archive."""

from __future__ import annotations

import contextlib
import hashlib
import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

from devcluster.images.archives import BuiltImage, describe, save
from devcluster.images.buildah import image_label, run_buildah
from devcluster.images.cache import cache_dir, locked
from devcluster.images.commands import ImageBuildError, clean_env, ensure_tools, say
from devcluster.images.sources import debian_sources
from devcluster.images.specs import (
    BASE_KEY_LABEL,
    BASE_PACKAGES,
    BASE_RECIPE,
    BASE_REF,
    BASE_SUITE,
    BASE_TAG,
)


def mmdebstrap_args(rootfs: Path) -> list[str]:
    hooks = Path("/usr/share/mmdebstrap/hooks/merged-usr")
    return [
        "mmdebstrap",
        "--mode=root",
        "--variant=minbase",
        "--include=" + ",".join(BASE_PACKAGES),
        # Merged /usr without the usrmerge package (and the perl it pulls in).
        *([f"--hook-dir={hooks}"] if hooks.is_dir() else []),
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        "--dpkgopt=path-exclude=/usr/share/info/*",
        BASE_SUITE,
        str(rootfs),
        *debian_sources(),
    ]


def base_key() -> str:
    recipe = [BASE_RECIPE, *mmdebstrap_args(Path("rootfs.tar"))]
    return hashlib.sha256(json.dumps(recipe).encode()).hexdigest()[:32]


def base_image(progress: IO[str] | None = None) -> BuiltImage:
    """The Debian bookworm + python3 base: in buildah's storage and as an OCI archive."""
    ensure_tools(progress)
    directory = cache_dir()
    with locked(directory):
        return _base_image_locked(directory, progress)


def _base_image_locked(directory: Path, progress: IO[str] | None) -> BuiltImage:
    key = base_key()
    archive = directory / f"base-{key}.tar"
    in_storage = image_label(BASE_TAG, BASE_KEY_LABEL) == key
    if in_storage and archive.exists():
        return describe("base", BASE_REF, archive)
    if not in_storage and archive.exists():
        say(progress, f"base: restoring {BASE_TAG} from {archive.name}")
        image_id = run_buildah("pull", "--quiet", f"oci-archive:{archive}").strip().splitlines()[-1]
        run_buildah("tag", image_id, BASE_TAG)
        with contextlib.suppress(ImageBuildError):  # the name the pull gave it
            run_buildah("rmi", f"localhost/{BASE_REF}")  # drops the name, not the image
        return describe("base", BASE_REF, archive)
    if not in_storage:
        started = time.monotonic()
        say(progress, f"base: mmdebstrap {BASE_SUITE} minbase + {' '.join(BASE_PACKAGES)}")
        with tempfile.TemporaryDirectory(prefix="bodypose-base-") as tmp:
            rootfs = Path(tmp) / "rootfs.tar"
            log = directory / "base-mmdebstrap.log"
            with log.open("w") as out:
                proc = subprocess.run(
                    mmdebstrap_args(rootfs),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=clean_env(),
                    check=False,
                )
            if proc.returncode != 0:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
                raise ImageBuildError(f"make images: base failed at mmdebstrap\n{tail}")
            ctr = run_buildah("from", "scratch").strip().splitlines()[-1]
            try:
                run_buildah("add", "--quiet", ctr, str(rootfs), "/")
                run_buildah(
                    "config",
                    "--env",
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "--env",
                    "LANG=C.UTF-8",
                    "--cmd",
                    "/bin/bash",
                    "--label",
                    f"{BASE_KEY_LABEL}={key}",
                    "--label",
                    f"org.opencontainers.image.title=bodypose-export base (Debian {BASE_SUITE})",
                    ctr,
                )
                run_buildah("commit", "--quiet", "--rm", ctr, BASE_TAG)
            except ImageBuildError:
                with contextlib.suppress(ImageBuildError):
                    run_buildah("rm", ctr)
                raise
        say(progress, f"base: made in {time.monotonic() - started:.0f}s")
    return save("base", BASE_TAG, BASE_REF, archive)
