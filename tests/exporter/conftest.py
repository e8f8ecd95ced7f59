"""Helpers for exporter tests: run the CLI in-process and capture what a user sees."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from bodypose_exporter.cli.main import export_main as main


@dataclass(frozen=True)
class CliRun:
    code: int
    out: str
    err: str


RunCli = Callable[..., CliRun]


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> RunCli:
    def run(*args: str) -> CliRun:
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse errors exit 2 with usage on stderr
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return CliRun(code, captured.out, captured.err)

    return run


def leftovers(directory: Path) -> list[str]:
    """Everything an export may have left in `directory` (outputs and staging dirs)."""
    return sorted(
        p.name
        for p in directory.iterdir()
        if p.suffix in (".etlt", ".onnx")
        or p.name == "manifest.json"
        or p.name.startswith(".bpnet")
    )
