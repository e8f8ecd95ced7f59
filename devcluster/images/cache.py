"""The content-keyed cache of image archives: where it is, its lock, the key, pruning."""

from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from devcluster.images.specs import REPO_ROOT, UNKEYED_ARGS, ImageSpec


def cache_dir() -> Path:
    explicit = os.environ.get("BODYPOSE_IMAGE_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "bodypose-export" / "images"


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """One builder at a time per cache directory (make and pytest may overlap)."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _ignore_patterns() -> list[str]:
    path = REPO_ROOT / ".dockerignore"
    if not path.exists():
        return []
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line.rstrip("/") for line in lines if line and not line.startswith("#")]


def _ignored(rel: str, patterns: Sequence[str]) -> bool:
    """.dockerignore matching: a pattern names a path from the context root (and all
    below it); `**/` in front matches at any depth."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        if pattern.startswith("**/"):
            bare = pattern.removeprefix("**/")
            if any(fnmatch.fnmatch(part, bare) for part in parts):
                return True
        elif any(fnmatch.fnmatch(prefix, pattern) for prefix in prefixes):
            return True
    return False


def copied_files(dockerfile: Path) -> list[Path]:
    """Every file of the build context that the Dockerfile's COPY/ADD lines bring in."""
    text = dockerfile.read_text().replace("\\\n", " ")
    patterns = _ignore_patterns()
    files: set[Path] = set()
    for line in text.splitlines():
        words = line.strip().split()
        if not words or words[0].upper() not in ("COPY", "ADD"):
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        if any(w.startswith("--from") for w in words[1:]):
            continue
        for source in args[:-1]:
            for match in sorted(REPO_ROOT.glob(source)):
                candidates = [match] if match.is_file() else sorted(match.rglob("*"))
                for path in candidates:
                    rel = path.relative_to(REPO_ROOT).as_posix()
                    if path.is_file() and not _ignored(rel, patterns):
                        files.add(path)
    return sorted(files)


def content_key(spec: ImageSpec, base_id: str, build_args: dict[str, str]) -> str:
    digest = hashlib.sha256()

    def feed(label: str, data: bytes) -> None:
        digest.update(f"{label}\0{len(data)}\0".encode())
        digest.update(data)

    dockerfile = REPO_ROOT / spec.dockerfile
    feed("dockerfile", dockerfile.read_bytes())
    for path in copied_files(dockerfile):
        feed("file:" + path.relative_to(REPO_ROOT).as_posix(), path.read_bytes())
    feed("base", base_id.encode())
    keyed = {k: v for k, v in sorted(build_args.items()) if k not in UNKEYED_ARGS}
    feed("args", json.dumps(keyed, sort_keys=True).encode())
    return digest.hexdigest()[:32]


# An exporter archive is about 1 GB: keep the newest few per image (another checkout
# may still use one), not one per source change for ever.
KEEP_ARCHIVES = 3


def prune_archives(name: str, keep: Path) -> None:
    archives = sorted(
        keep.parent.glob(f"{name}-*.tar"), key=lambda p: p.stat().st_mtime, reverse=True
    )
    for old in archives[KEEP_ARCHIVES:]:
        if old != keep:
            old.unlink(missing_ok=True)
            old.with_suffix(".json").unlink(missing_ok=True)
