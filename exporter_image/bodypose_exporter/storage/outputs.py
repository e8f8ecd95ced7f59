"""All-or-nothing publication of a run's outputs.

Outputs are written into a private staging directory first; only when every
file is complete are they moved (locally: `os.replace` in the same directory,
atomic per file) or uploaded (S3, one object at a time) to their destination,
the manifest last. The manifest lists every other file with its size and
sha256, and readers (the operator, `bpnet-export --engine_file`) trust only
what a manifest lists, so the set as a whole is published by the manifest's
one atomic write:

- before the first file goes out, a manifest already at the destination (an
  earlier run's) is withdrawn: the files about to be replaced would no longer
  match its sha256 values, and no reader may see it list a mix of old and new;
- a failure part-way (an upload refused, the endpoint gone) stops there: the
  files this run already published are removed (best effort), no manifest is
  written, and the error names the file that failed, how many went out and
  that nothing there is listed; the same command run again publishes the set.

A run that fails before publishing removes its staging directory and leaves
the output path untouched.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from bodypose_exporter.errors import OutputNotWritableError, UserError
from bodypose_exporter.manifest import MANIFEST_NAME
from bodypose_exporter.storage import s3
from bodypose_exporter.storage.errors import UnreachableError

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
        """Path in the staging directory for the output called `name` (may hold `/`)."""
        path = self.staging / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def final_location(self, name: str) -> str:
        if self.remote:
            return str(self._remote_uri.sibling(name))
        return str(Path(self.destination).expanduser().resolve().parent / name)

    def publish(self, names: list[str]) -> list[str]:
        """Move or upload the staged files, in order; a manifest goes last.

        When the last name is the manifest and other files come before it, the
        manifest already at the destination is withdrawn first, and a failure
        part-way removes what this call published (module docstring).
        """
        sets_a_manifest = len(names) > 1 and names[-1] == MANIFEST_NAME
        if sets_a_manifest:
            self._withdraw(MANIFEST_NAME)
        done: list[str] = []
        for name in names:
            target = self.final_location(name)
            try:
                self._put(name, target)
            except UserError as exc:
                if not sets_a_manifest:
                    raise
                # S3 away stays S3 away (the Job retries it); a refusal stays the same
                # refusal (denied, no bucket), anything else a refused write.
                kind: type[UserError] = (
                    type(exc)
                    if isinstance(exc, UnreachableError | OutputNotWritableError)
                    else OutputNotWritableError
                )
                raise kind(self._stopped(exc, done, len(names))) from exc
            done.append(target)
            self._published.append(target)
            log.info("wrote %s", target)
        return list(self._published)

    def _put(self, name: str, target: str) -> None:
        src = self.staged(name)
        if self.remote:
            s3.upload(src, s3.S3Uri.parse(target))
            return
        if Path(target).exists():
            log.warning("replacing existing %s", target)
        try:
            Path(target).parent.mkdir(parents=True, exist_ok=True)  # names may hold `/`
            os.replace(src, target)
        except OSError as exc:
            raise OutputNotWritableError(f"cannot write {target}: {exc.strerror or exc}") from exc

    def _withdraw(self, name: str) -> None:
        """Remove `name` at the destination if it is there (failing names the location)."""
        target = self.final_location(name)
        try:
            if self.remote:
                uri = s3.S3Uri.parse(target)
                if s3.exists(uri):
                    s3.delete(uri)
                    log.info("withdrew %s until the new set is complete", target)
            elif Path(target).exists():
                Path(target).unlink()
                log.info("withdrew %s until the new set is complete", target)
        except UnreachableError as exc:
            # S3 away while the set is replaced is S3 away (exit 75: the Job retries it), not
            # a refused write (exit 2: the operator's pod failure policy fails the Job for
            # good): a MinIO outage at this moment failed an export for good (make soak,
            # seed 35061, step 3).
            raise UnreachableError(f"cannot replace {target}: {exc}") from exc
        except (OSError, UserError) as exc:
            raise OutputNotWritableError(f"cannot replace {target}: {exc}") from exc

    def _stopped(self, exc: UserError, done: list[str], total: int) -> str:
        """The one-line error of a publication that failed part-way, after cleaning up."""
        left: list[str] = []
        for target in done:
            try:
                if self.remote:
                    s3.delete(s3.S3Uri.parse(target))
                else:
                    Path(target).unlink(missing_ok=True)
            except (OSError, UserError) as cleanup:
                log.warning("could not remove %s: %s", target, cleanup)
                left.append(target)
            else:
                self._published.remove(target)
        where = self.final_location("")
        state = (
            f"{len(left)} unlisted file(s) left there" if left else "the ones written were removed"
        )
        return (
            f"{exc}; publishing to {where} stopped after {len(done)} of {total} files: "
            f"no {MANIFEST_NAME} was written, so nothing there is listed ({state}); "
            "run the same command again"
        )

    def close(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
