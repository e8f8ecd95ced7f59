"""Where a stage's input or output is: a local path or an s3:// URI, behind one type.

Every stage reads and writes through `Location` (exists, fetch, put, list),
so no stage asks which kind it has; S3 goes through `storage.s3` (one client
per process, its faults typed in `storage.errors`), a path through the file
system. All-or-nothing sets of outputs are `storage.outputs.OutputSet`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from bodypose_exporter.errors import NotFoundError, UserError
from bodypose_exporter.storage import s3


@dataclass(frozen=True)
class Location:
    uri: str  # a path (~ expanded) or s3://bucket/key

    @property
    def is_s3(self) -> bool:
        return s3.is_s3(self.uri)

    @property
    def name(self) -> str:
        return self.uri.rstrip("/").rpartition("/")[2]

    def _path(self) -> Path:
        return Path(self.uri).expanduser()

    def child(self, name: str) -> Location:
        """`name` inside this location taken as a directory (or prefix)."""
        if self.is_s3:
            return Location(str(s3.S3Uri.parse(self.uri).child(name)))
        return Location(str(self._path() / name))

    def exists(self) -> bool:
        return s3.exists(s3.S3Uri.parse(self.uri)) if self.is_s3 else self._path().is_file()

    def fetch(self, work: Path, what: str) -> Path:
        """A local file holding this input: the path itself, or a download into `work`."""
        if self.is_s3:
            dst = work / (s3.S3Uri.parse(self.uri).key.rpartition("/")[2] or "object")
            self.download(dst)
            return dst
        path = self._path()
        if not path.exists():
            raise NotFoundError(f"{what} {self.uri} does not exist")
        if not path.is_file():
            raise UserError(f"{what} {self.uri} is not a file")
        return path

    def download(self, dst: Path) -> None:
        """This S3 object written at `dst` (its directory made), for inputs kept under their
        own names (an evaluation set's images); `fetch` when any local path will do. S3
        only: a local input is read where it is, never copied."""
        if not self.is_s3:
            raise ValueError(f"download is for s3:// locations; {self.uri} is local")
        dst.parent.mkdir(parents=True, exist_ok=True)
        s3.download(s3.S3Uri.parse(self.uri), dst)

    def put(self, local: Path) -> None:
        """Write `local` here (an upload, or a copy with its directory made)."""
        if self.is_s3:
            s3.upload(local, s3.S3Uri.parse(self.uri))
            return
        target = self._path()
        if target.resolve() == local.resolve():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, target)

    def list(self) -> list[str]:
        """Names of the files directly inside this location taken as a directory."""
        if self.is_s3:
            return s3.list_directory(s3.S3Uri.parse(self.uri))
        path = self._path()
        if not path.is_dir():
            raise NotFoundError(f"{self.uri} is not a directory")
        return sorted(p.name for p in path.iterdir() if p.is_file())
