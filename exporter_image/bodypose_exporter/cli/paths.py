"""Every path flag of every `bpnet` command, checked in one place before a run does any work.

A flag declares what its path is (`mark`, through `cli.args.path_flag`): a file
or directory read, a file or directory written, a file read when it exists and
else written (a calibration or timing cache), or `--engine_file` of
`bpnet-export`, where a directory gets the file name the operator's Jobs use
(`engines.naming.resolve_engine_file`). `main.run_command` calls `check` on
the flags the parser itself carries (`flags_of`), so a new path flag is
checked as soon as it is marked, and tests/cli/test_paths.py feeds every
marked flag of every command a directory, a path under a missing directory and
a place nothing can be written.

The answers:
- a directory where a file is read or written: refused, naming the flag (a
  written one with the file name to give, e.g. `out/bpnet_model.etlt`);
- a file where a directory is expected: refused;
- a path under a missing directory: for what is read, the stage that reads it
  says "<what> X does not exist" (NotFound), for paths and s3:// URIs alike,
  after the command's own flag checks; for what is written, the directories
  are created, as TAO's
  export creates `-o`'s (`os.makedirs(output_root)` in NVIDIA/
  tao_tensorflow1_backend `nvidia_tao_tf1/cv/bpnet/scripts/export.py`);
- a path through a file ("file.txt/out"), or under a directory nothing can be
  created in (a read-only mount, /proc): refused, OutputNotWritable.

s3:// locations are left to S3, which answers for them (storage.location).
"""

from __future__ import annotations

import argparse
import enum
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bodypose_exporter.errors import NotFoundError, OutputNotWritableError, UserError
from bodypose_exporter.manifest import MANIFEST_NAME


class PathKind(enum.Enum):
    READ_FILE = "a file to read"
    READ_DIR = "a directory to read"
    WRITE_FILE = "a file to write"
    WRITE_DIR = "a directory to write into"
    #: Read when it exists, else written (--cal_cache_file, --cal_data_file, --timing_cache).
    CACHE_FILE = "a file read if it exists, else written"
    #: bpnet-export --engine_file: a file, or a directory the Jobs' file name goes into.
    ENGINE_FILE_OR_DIR = "an engine file, or a directory for it"
    #: bpnet inspect: a file to read; for an .engine, the manifest.json beside it is read.
    READ_FILE_OR_ENGINE = "a file to read, or an engine whose manifest.json is beside it"


@dataclass(frozen=True)
class PathFlag:
    flag: str  # as a user writes it: "-o/--output_file"
    dest: str
    kind: PathKind
    #: What the stages call it in "... does not exist" ("model"), else the flag.
    label: str | None = None
    #: The file name to suggest when a written file's path names a directory.
    example: str | None = None


_ATTRIBUTE = "bodypose_path"


def mark(
    action: argparse.Action, kind: PathKind, *, label: str | None = None,
    example: str | None = None,
) -> argparse.Action:  # fmt: skip
    flag = "/".join(action.option_strings) or action.dest
    setattr(action, _ATTRIBUTE, PathFlag(flag, action.dest, kind, label, example))
    return action


def flags_of(parser: argparse.ArgumentParser) -> tuple[PathFlag, ...]:
    """The path flags `parser` declares (its actions `mark`ed)."""
    return tuple(getattr(a, _ATTRIBUTE) for a in parser._actions if getattr(a, _ATTRIBUTE, None))


def check(flags: tuple[PathFlag, ...], args: argparse.Namespace) -> None:
    """Refuse what no run could use, create the missing directories of what is written;
    UserError naming the flag, before any work."""
    for path_flag in flags:
        value = getattr(args, path_flag.dest, None)
        if value is not None:
            check_one(path_flag, str(value))


def check_one(path_flag: PathFlag, value: str) -> None:
    if "://" in value:
        return
    kind = path_flag.kind
    if kind is PathKind.READ_FILE_OR_ENGINE:
        kind = PathKind.READ_FILE
        if value.endswith(".engine"):  # what is read: cli/inspect.py
            value = f"{value.rpartition('/')[0] or '.'}/{MANIFEST_NAME}"
    path = Path(value).expanduser()
    names_dir = value.endswith("/") or path.is_dir()
    if kind is PathKind.ENGINE_FILE_OR_DIR:
        kind = PathKind.WRITE_DIR if names_dir else PathKind.WRITE_FILE
    flag = path_flag.flag
    if kind in (PathKind.READ_FILE, PathKind.WRITE_FILE, PathKind.CACHE_FILE) and names_dir:
        hint = ""
        if kind is not PathKind.READ_FILE:
            example = path_flag.example or "NAME"
            hint = f"; give the file to write, e.g. {value.rstrip('/')}/{example}"
        raise UserError(f"{flag} {value} names a directory, not a file{hint}")
    if kind in (PathKind.READ_DIR, PathKind.WRITE_DIR) and path.exists() and not path.is_dir():
        raise UserError(f"{flag} {value} is a file, not a directory")
    if kind in (PathKind.READ_FILE, PathKind.READ_DIR):
        blocker = None if path.exists() else _file_on_the_way(path)
        if blocker is not None:
            raise NotFoundError(
                f"{path_flag.label or flag} {value} does not exist: {blocker} is a file, "
                "not a directory"
            )
        # A plain missing input is the stage's to name, as it does for an s3:// one
        # ("model X does not exist", NotFound), after the flags' own checks.
        return
    if kind is PathKind.CACHE_FILE and path.is_file():
        return
    # Written: its directory (or, for a directory, itself) created if missing.
    directory = path if kind is PathKind.WRITE_DIR else path.parent
    _make_writable_dir(flag, value, directory)


def _file_on_the_way(path: Path) -> Path | None:
    """The first component of `path` that exists and is not a directory, if any."""
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return None


def _make_writable_dir(flag: str, value: str, directory: Path) -> None:
    blocker = _file_on_the_way(directory / "x")
    if blocker is not None:
        raise OutputNotWritableError(
            f"cannot write {flag} {value}: {blocker} is a file, not a directory"
        )
    existing = next(p for p in (directory, *directory.parents) if p.exists())
    try:
        # A probe, not os.access: root passes access() where nothing can be created
        # (procfs), and a read-only mount answers only to a real attempt.
        with tempfile.TemporaryFile(dir=existing):
            pass
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputNotWritableError(
            f"cannot write {flag} {value}: nothing can be created in {existing} "
            f"({exc.strerror or exc})"
        ) from exc
