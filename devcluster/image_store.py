"""The local cluster's images: OCI archives loaded once, unpacked once per digest.

What a node's container runtime keeps (containerd's content and snapshot
stores), in the smallest form the executor needs:

- `load(archive)` reads the archive's `index.json` for the tag and the manifest
  digest (the OCI image layout spec: image-layout.md, annotation
  `org.opencontainers.image.ref.name`), unpacks the layers with `umoci unpack`
  into `<cache>/rootfs/<digest>/` unless that digest is already there, keeps the
  image config (`Entrypoint`, `Cmd`, `Env`, `WorkingDir`, `User`) beside it, and
  records `<ref> -> <digest>` in this cluster's `images.json`: that is "the
  image is present on the node", as after `kind load image-archive`;
- `resolve(ref)` is what a kubelet asks before it pulls: the image for a pod's
  `image:` string, normalised the way containerd normalises it
  (`bodypose-export/exporter:0.1.0` is `docker.io/bodypose-export/exporter:0.1.0`,
  no tag means `:latest`, `name@sha256:...` matches by digest).

Unpacked trees are shared by every cluster on this machine and never changed:
each container gets an overlay on top (devcluster/container_init.py).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REF_ANNOTATION = "org.opencontainers.image.ref.name"
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "bodypose-export"


def unpack_cache() -> Path:
    """Where unpacked images live: beside the built archives, shared by all clusters."""
    root = Path(os.environ.get("BODYPOSE_IMAGE_CACHE", DEFAULT_CACHE / "images"))
    return root / "rootfs"


class ImageError(Exception):
    """An archive that cannot be loaded; the message says which and why."""


def normalize(ref: str) -> str:
    """containerd's reference normalisation (docker's `ParseNormalizedNamed`):
    a name without a registry is on docker.io, a one-part name is in `library/`,
    and a name without a tag or digest means `:latest`."""
    name, digest = ref.split("@", 1) if "@" in ref else (ref, "")
    first, _, rest = name.partition("/")
    if not rest or ("." not in first and ":" not in first and first != "localhost"):
        name = f"docker.io/{name if rest else 'library/' + name}"
    last = name.rsplit("/", 1)[-1]
    if ":" not in last and not digest:
        name += ":latest"
    return f"{name}@{digest}" if digest else name


def repository(ref: str) -> str:
    """The normalised name without tag or digest (what an imageID is prefixed with)."""
    name = normalize(ref).split("@", 1)[0]
    head, _, last = name.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}"


@dataclass(frozen=True)
class Image:
    """One image present on the local cluster's nodes."""

    ref: str  # normalised
    digest: str  # sha256:... of the manifest
    rootfs: Path
    config: dict[str, Any]  # the OCI image config's `config` object

    @property
    def image_id(self) -> str:
        """What a kubelet reports as `containerStatuses[].imageID`."""
        return f"{repository(self.ref)}@{self.digest}"


def _read_member(tar: tarfile.TarFile, name: str) -> bytes:
    member = tar.extractfile(name)
    if member is None:
        raise ImageError(f"{tar.name!r}: no {name}")
    return member.read()


def read_archive(archive: Path) -> tuple[str, str, dict[str, Any]]:
    """(tag, manifest digest, image config) of an OCI archive with one image."""
    try:
        with tarfile.open(archive) as tar:
            index = json.loads(_read_member(tar, "index.json"))
            manifests = index.get("manifests") or []
            if len(manifests) != 1:
                raise ImageError(f"{archive}: expected one image, found {len(manifests)}")
            desc = manifests[0]
            ref = (desc.get("annotations") or {}).get(REF_ANNOTATION, "")
            digest = str(desc["digest"])
            manifest = json.loads(_read_member(tar, f"blobs/sha256/{digest.split(':', 1)[1]}"))
            config_digest = manifest["config"]["digest"].split(":", 1)[1]
            config = json.loads(_read_member(tar, f"blobs/sha256/{config_digest}"))
    except (OSError, tarfile.TarError, KeyError, json.JSONDecodeError) as exc:
        raise ImageError(f"{archive}: not a readable OCI archive ({exc})") from None
    return ref, digest, dict(config.get("config") or {})


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def unpack(archive: Path, digest: str, config: dict[str, Any], cache: Path | None = None) -> Path:
    """The unpacked root filesystem of `digest`, unpacking the archive only if it is
    not there yet (once per digest on this machine, whoever asks first)."""
    cache = cache or unpack_cache()
    target = cache / digest.replace(":", "-")
    with _locked(cache / f".{target.name}.lock"):
        if (target / "rootfs").is_dir():
            return target
        scratch = Path(tempfile.mkdtemp(prefix=".unpack-", dir=cache))
        try:
            layout = scratch / "layout"
            layout.mkdir()
            with tarfile.open(archive) as tar:
                tar.extractall(layout, filter="tar")
            bundle = scratch / "bundle"
            done = subprocess.run(
                ["umoci", "unpack", "--image", f"{layout}@{digest}", str(bundle)],
                capture_output=True,
                text=True,
            )
            if done.returncode:
                # umoci takes a tag; the digest form exists only in newer releases.
                tag = read_archive(archive)[0]
                done = subprocess.run(
                    ["umoci", "unpack", "--image", f"{layout}:{tag}", str(bundle)],
                    capture_output=True,
                    text=True,
                )
            if done.returncode:
                raise ImageError(f"umoci unpack {archive} failed: {done.stderr.strip()}")
            (bundle / "image-config.json").write_text(json.dumps(config))
            for extra in ("config.json", "umoci.json"):
                (bundle / extra).unlink(missing_ok=True)
            bundle.rename(target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    (target / USED).touch()
    prune(cache, keep=target)
    return target


# Unpacked trees are large (the exporter's is 2.6 GB): keep the few used last, and never
# one used within the hour (a running container's overlay may sit on it).
USED = ".used"
KEEP_UNPACKED = 4
KEEP_SECONDS = 3600


def prune(cache: Path, keep: Path) -> None:
    trees = sorted(
        (p for p in cache.glob("sha256-*") if (p / USED).exists()),
        key=lambda p: (p / USED).stat().st_mtime,
        reverse=True,
    )
    for old in trees[KEEP_UNPACKED:]:
        if old != keep and time.time() - (old / USED).stat().st_mtime > KEEP_SECONDS:
            shutil.rmtree(old, ignore_errors=True)


class ImageStore:
    """The images one local cluster has: `<state>/images.json`, ref -> digest."""

    def __init__(self, index: Path, cache: Path | None = None) -> None:
        self.index = index
        self.cache = cache or unpack_cache()
        self.last_load_seconds = 0.0

    def _entries(self) -> dict[str, str]:
        try:
            return dict(json.loads(self.index.read_text()))
        except FileNotFoundError:
            return {}

    def load(self, archive: Path, ref: str | None = None) -> Image:
        """Make the archive's image present (under its own tag, or `ref`)."""
        started = time.monotonic()
        tag, digest, config = read_archive(archive)
        name = normalize(ref or tag)
        if not ref and not tag:
            raise ImageError(f"{archive}: no {REF_ANNOTATION} annotation; pass a ref")
        root = unpack(archive, digest, config, self.cache)
        with _locked(self.index.with_suffix(".lock")):
            entries = self._entries()
            entries[name] = digest
            tmp = self.index.with_suffix(".tmp")
            tmp.write_text(json.dumps(entries, indent=1, sort_keys=True))
            tmp.rename(self.index)
        self.last_load_seconds = time.monotonic() - started
        return Image(name, digest, root / "rootfs", config)

    def resolve(self, ref: str) -> Image | None:
        """The present image a pod's `image:` names, or None (the kubelet would pull)."""
        name = normalize(ref)
        entries = self._entries()
        if "@" in name:
            wanted = name.split("@", 1)[1]
            found = next(((r, d) for r, d in entries.items() if d == wanted), None)
        else:
            found = (name, entries[name]) if name in entries else None
        if found is None:
            return None
        root = self.cache / found[1].replace(":", "-")
        if not (root / "rootfs").is_dir():
            return None  # the shared cache was cleared: present no more
        (root / USED).touch()
        config = json.loads((root / "image-config.json").read_text())
        return Image(found[0], found[1], root / "rootfs", config)

    def images(self) -> dict[str, str]:
        return self._entries()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devcluster.image_store",
        description="Load OCI archives into a local cluster (what `kind load image-archive` "
        "does for kind), or list what it has.",
    )
    parser.add_argument("--state-dir", type=Path, default=Path(".cluster"))
    sub = parser.add_subparsers(dest="action", required=True)
    load = sub.add_parser("load", help="make an OCI archive's image present on the nodes")
    load.add_argument("archive", type=Path, nargs="+")
    sub.add_parser("list", help="the images the cluster has")
    args = parser.parse_args(argv)
    store = ImageStore(args.state_dir.resolve() / "images.json")
    if args.action == "load":
        for archive in args.archive:
            try:
                image = store.load(archive)
            except ImageError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
            print(f"{image.ref}  {image.digest}  ({store.last_load_seconds:.1f}s)")
        return 0
    for ref, digest in sorted(store.images().items()):
        print(f"{ref}  {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
