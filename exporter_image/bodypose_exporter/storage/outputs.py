"""All-or-nothing publication of a run's outputs.

Outputs are written into a private staging directory first; only when every
file is complete are they moved (locally: `os.replace` in the same directory,
atomic per file) or uploaded (S3) to their destination, the manifest last. A
failed run removes its staging directory and leaves nothing at the output
path, so a reader that sees the manifest knows the set is complete.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from bodypose_exporter.errors import OutputNotWritableError
from bodypose_exporter.storage import s3

log = logging.getLogger(__name__)


class OutputSet:
    """Files destined for one output location (a local directory or an S3 prefix).

    `destination` is the `-o` value; the other outputs go beside it. Use as a
    context manager: on an exception the staging directory is removed and
    nothing is published.
    """

    def __init__(self, destination: str) -> None:
        self.destination = destination
        self.remote = s3.is_s3(destination)
        if self.remote:
            self._remote_uri = s3.S3Uri.parse(destination)
            s3.check_writable(self._remote_uri)
            self.staging = Path(tempfile.mkdtemp(prefix="bpnet-export-out-"))
        else:
            out_dir = Path(destination).expanduser().resolve().parent
            try:
                out_dir.mkdir(parents=True, exist_ok=True)
                # Staging beside the destination keeps the final rename atomic.
                self.staging = Path(tempfile.mkdtemp(prefix=".bpnet-export-", dir=out_dir))
            except OSError as exc:
                raise OutputNotWritableError(
                    f"cannot write the output {destination}: {out_dir}: {exc.strerror or exc}"
                ) from exc
        self._published: list[str] = []

    def staged(self, name: str) -> Path:
        """Path in the staging directory for the output called `name`."""
        return self.staging / name

    def final_location(self, name: str) -> str:
        if self.remote:
            return str(self._remote_uri.sibling(name))
        return str(Path(self.destination).expanduser().resolve().parent / name)

    def publish(self, names: list[str]) -> list[str]:
        """Move or upload the staged files, in order (put the manifest last)."""
        for name in names:
            src = self.staged(name)
            target = self.final_location(name)
            if self.remote:
                s3.upload(src, s3.S3Uri.parse(target))
            else:
                if Path(target).exists():
                    log.warning("replacing existing %s", target)
                os.replace(src, target)
            self._published.append(target)
            log.info("wrote %s", target)
        return list(self._published)

    def close(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
