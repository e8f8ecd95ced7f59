"""Resolving an input (`-m`, `-e`) to a local file, downloading s3:// URIs."""

from __future__ import annotations

from pathlib import Path

from bodypose_exporter.errors import NotFoundError, UserError
from bodypose_exporter.storage import s3


def fetch(uri: str, workdir: Path, what: str) -> Path:
    """A local path holding the input named by `uri` (a path or s3:// URI)."""
    if s3.is_s3(uri):
        parsed = s3.S3Uri.parse(uri)
        name = parsed.key.rpartition("/")[2] or "object"
        dst = workdir / name
        s3.download(parsed, dst)
        return dst
    path = Path(uri).expanduser()
    if not path.exists():
        raise NotFoundError(f"{what} {uri} does not exist")
    if not path.is_file():
        raise UserError(f"{what} {uri} is not a file")
    return path
