"""Every path flag of every `bpnet` command: a directory, a missing parent, an unwritable place.

The flags are collected from the commands' parsers themselves (`cli.paths.flags_of`: the
flags `configure` marked), so a new path flag is fed the same three cases as soon as it
is marked; `test_every_string_flag_is_a_path_flag_or_named_here` makes sure a new string
flag is either marked or listed as no path.

"Unwritable" needs care because the tests run as root, and root passes permission
bits (chmod 0o500 would stop no one here). Two places nothing can be created in even by
root: a path through a file (`file.txt/out/...`, ENOTDIR) and a path under /proc, where
procfs creates no files.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import pytest

from bodypose_exporter.cli import paths, registry
from bodypose_exporter.cli.main import build_main, export_main
from bodypose_exporter.cli.paths import PathFlag, PathKind
from bodypose_exporter.errors import NotFoundError, OutputNotWritableError, UserError

#: String flags that name no path.
NOT_PATHS = {
    ("export", "key"), ("export", "input_dims"), ("export", "expected_gpu_product"),
    ("export", "expected_compute_capability"), ("build", "expected_gpu_product"),
    ("build", "expected_compute_capability"), ("build", "target_identity"),
    ("calibrate", "input_dims"), ("sample", "key"), ("inspect", "key"),
}  # fmt: skip


def parser_of(name: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"bpnet {name}")
    registry.command(name).configure(p)
    return p


PATH_FLAGS = [
    (name, flag) for name in registry.COMMANDS for flag in paths.flags_of(parser_of(name))
]
READS = (PathKind.READ_FILE, PathKind.READ_DIR, PathKind.READ_FILE_OR_ENGINE)
FILES = (PathKind.READ_FILE, PathKind.WRITE_FILE, PathKind.CACHE_FILE, PathKind.READ_FILE_OR_ENGINE)


def ids(case: tuple[str, PathFlag]) -> str:
    return f"{case[0]}:{case[1].flag}"


def check(flag: PathFlag, value: str) -> None:
    """The check `cli.main.run_command` runs on the parsed flags."""
    paths.check((flag,), argparse.Namespace(**{flag.dest: value}))


def test_the_path_flags_are_found() -> None:
    found = {(name, f.flag) for name, f in PATH_FLAGS}
    assert {("build", "--engine_file"), ("export", "--engine_file"), ("export", "-o/--output_file"),
            ("evaluate", "--output"), ("sample", "-o/--output_dir"), ("inspect", "file"),
            ("calibrate", "--cal_cache_file")} <= found  # fmt: skip
    assert len(found) >= 40


def test_every_string_flag_is_a_path_flag_or_named_here() -> None:
    for name in registry.COMMANDS:
        p = parser_of(name)
        marked = {f.dest for f in paths.flags_of(p)}
        for a in p._actions:
            if isinstance(a, argparse._HelpAction | argparse._VersionAction):
                continue
            if a.nargs == 0 or a.choices or a.type not in (None, str, Path):
                continue
            assert a.dest in marked or (name, a.dest) in NOT_PATHS, (name, a.dest)


@pytest.mark.parametrize("case", PATH_FLAGS, ids=ids)
def test_a_directory(case: tuple[str, PathFlag], tmp_path: Path) -> None:
    _, flag = case
    given = f"{tmp_path}/"
    if flag.kind in FILES:
        with pytest.raises(UserError) as exc:
            check(flag, given)
        message = str(exc.value)
        assert message.startswith(f"{flag.flag} {given} names a directory, not a file")
        if flag.kind not in READS:  # what to give instead
            assert f"; give the file to write, e.g. {tmp_path}/" in message
    else:  # a directory is what it takes (bpnet-export --engine_file: one the file goes in)
        check(flag, given)


@pytest.mark.parametrize("case", PATH_FLAGS, ids=ids)
def test_a_missing_parent(case: tuple[str, PathFlag], tmp_path: Path) -> None:
    _, flag = case
    given = tmp_path / "missing" / "sub" / "x.bin"
    if flag.kind in READS:
        # Left to the stage that reads it, which says "<what> X does not exist" (NotFound)
        # after the command's own flag checks (test_a_missing_input_is_named_by_the_stage).
        check(flag, str(given))
        assert not (tmp_path / "missing").exists()
    else:  # written: its directories are made, as TAO's export makes -o's
        check(flag, str(given))
        made = given if flag.kind is PathKind.WRITE_DIR else given.parent
        assert made.is_dir() and not given.is_file()


@pytest.mark.parametrize("case", PATH_FLAGS, ids=ids)
def test_a_path_through_a_file(case: tuple[str, PathFlag], tmp_path: Path) -> None:
    _, flag = case
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file where a directory would be")
    given = blocker / "out" / "x.bin"
    if flag.kind in READS:
        expected = (
            f"{flag.label or flag.flag} {given} does not exist: {blocker} is a file, "
            "not a directory"
        )
        with pytest.raises(NotFoundError, match=f"^{re.escape(expected)}$"):
            check(flag, str(given))
    else:
        with pytest.raises(
            OutputNotWritableError,
            match=re.escape(f"cannot write {flag.flag} {given}: {blocker} is a file, not a dir"),
        ):
            check(flag, str(given))


@pytest.mark.parametrize("case", PATH_FLAGS, ids=ids)
def test_a_place_nothing_can_be_created_in(case: tuple[str, PathFlag]) -> None:
    _, flag = case
    given = "/proc/bodypose-no-such-dir/x.bin"
    if flag.kind in READS:
        check(flag, given)  # missing: the stage's "does not exist", as above
    else:
        with pytest.raises(
            OutputNotWritableError,
            match=re.escape(f"cannot write {flag.flag} {given}: nothing can be created in /proc "),
        ):
            check(flag, given)


def test_inspect_reads_the_manifest_beside_an_engine(tmp_path: Path) -> None:
    (flag,) = paths.flags_of(parser_of("inspect"))
    (tmp_path / "manifest.json").mkdir()
    with pytest.raises(UserError, match=re.escape(f"{tmp_path}/manifest.json names a direct")):
        check(flag, str(tmp_path / "bpnet_model.224.320.fp32.engine"))
    (tmp_path / "manifest.json").rmdir()
    (tmp_path / "manifest.json").write_text("{}")
    check(flag, str(tmp_path / "bpnet_model.224.320.fp32.engine"))  # the engine need not be here


@pytest.mark.parametrize(
    ("main", "argv", "said"),
    [
        (export_main, ["-m", "{tmp}/no/model.tlt", "-k", "k"], "model {tmp}/no/model.tlt"),
        (build_main, ["--onnx", "{tmp}/no/m.onnx", "--engine_file", "{tmp}/e.engine",
                     "--engine_backend", "onnxruntime"],
         "ONNX model {tmp}/no/m.onnx"),
    ],
)  # fmt: skip
def test_a_missing_input_is_named_by_the_stage(
    main: Any, argv: list[str], said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([a.format(tmp=tmp_path) for a in argv])
    assert code == 2
    assert f"error: {said.format(tmp=tmp_path)} does not exist" in capsys.readouterr().err


def test_s3_locations_are_left_to_s3() -> None:
    for _, flag in PATH_FLAGS:
        check(flag, "s3://bucket/prefix/")


# --- what a user sees, through the commands ---


def test_bpnet_build_engine_file_naming_a_directory_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """It wrote a hidden `out/.sm89.trtrtx1.7.1.116.engine` before."""
    log = tmp_path / "termination-log"
    monkeypatch.setenv("BODYPOSE_TERMINATION_LOG", str(log))
    onnx = tmp_path / "bpnet_model.onnx"
    onnx.write_bytes(b"not read: the flags are checked first")
    out = tmp_path / "out"
    out.mkdir()
    code = build_main(
        ["--onnx", str(onnx), "--engine_file", f"{out}/", "--engine_backend", "tensorrt-rtx",
         "--data_type", "fp16", "--compute_capabilities", "8.9"]
    )  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert (
        f"bpnet-build: error: --engine_file {out}/ names a directory, not a file; give the file "
        f"to write, e.g. {out}/bpnet_model.<height>.<width>.<precision>.engine (the name the "
        "Jobs use)"
    ) in err
    assert list(out.iterdir()) == []
    assert json.loads(log.read_text())["reason"] == "InvalidInput"


def test_bpnet_export_output_file_through_a_file_is_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("")
    out = blocker / "out" / "bpnet_model.etlt"
    # The model is not even looked at: the flags are checked first.
    code = export_main(["-m", str(tmp_path / "model.tlt"), "-k", "k", "-o", str(out)])
    assert code == 2
    assert (
        f"bpnet-export: error: cannot write -o/--output_file {out}: {blocker} is a file, "
        "not a directory"
    ) in capsys.readouterr().err


def test_bpnet_export_engine_file_directory_gets_the_jobs_name() -> None:
    from bodypose_exporter.cli import export as export_command

    args = parser_of("export").parse_args(
        ["-m", "m.tlt", "--engine_file", "out/", "--engine_backend", "onnxruntime"]
    )
    planned = export_command.plan_engine(args, 320, 448)
    assert planned is not None
    assert planned.engine_file == "out/bpnet_model.320.448.fp32.engine"  # not hidden
