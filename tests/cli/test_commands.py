"""`bpnet` and its aliases: the subcommands, today's flags kept exactly, help that teaches."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bodypose_exporter.cli import main as cli_main
from bodypose_exporter.cli import registry

FLAGS_TODAY = json.loads((Path(__file__).parent / "flags_today.json").read_text())
BIN = Path(sys.executable).parent
ALIASES = {"bpnet-export": "export", "bpnet-build": "build", "bpnet-sample": "sample"}


def _spec(parser: argparse.ArgumentParser) -> dict[str, dict[str, Any]]:
    out = {}
    for a in parser._actions:
        if isinstance(a, argparse._HelpAction):
            continue
        out[a.dest] = {
            "flags": list(a.option_strings) or [a.dest],
            "dest": a.dest,
            "default": a.default,
            "choices": list(a.choices) if a.choices else None,
            "required": a.required,
            "type": getattr(a.type, "__name__", None),
            "action": type(a).__name__,
        }
    return out


def _parser(name: str, prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog)
    registry.command(name).configure(parser)
    return parser


@pytest.mark.parametrize(
    ("alias", "command"),
    [*ALIASES.items(), ("evaluate", "evaluate")],
)
def test_aliases_keep_exactly_todays_flags(alias: str, command: str) -> None:
    """Names, defaults, choices, types and actions of every flag, as before the CLI package."""
    today = {f["dest"]: f for f in FLAGS_TODAY[alias]}
    now = _spec(_parser(command, alias))
    assert sorted(now) == sorted(today)
    for dest, flag in today.items():
        assert now[dest] == flag, dest


def test_bpnet_help_lists_every_subcommand() -> None:
    done = subprocess.run(
        [str(BIN / "bpnet"), "--help"], capture_output=True, text=True, check=True
    )
    for name in ("export", "build", "calibrate", "sample", "evaluate", "inspect"):
        assert f"    {name}" in done.stdout
    assert "bpnet-export, bpnet-build and bpnet-sample" in done.stdout


@pytest.mark.parametrize("script", ["bpnet-export", "bpnet-build", "bpnet-sample"])
def test_alias_console_scripts_teach(script: str) -> None:
    done = subprocess.run([str(BIN / script), "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    assert done.stdout.startswith(f"usage: {script} ")
    assert "example" in done.stdout


@pytest.mark.parametrize("name", list(registry.COMMANDS))
def test_each_subcommand_help_has_a_description_and_examples(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        cli_main.main([name, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: bpnet {name} ")
    assert "example" in out


def test_subcommand_and_alias_parse_the_same() -> None:
    argv = ["-m", "m.tlt", "-k", "k", "-d", "224,320,3", "--data_type", "int8", "--batches", "2"]
    via_bpnet = cli_main.build_parser().parse_args(["export", *argv])
    via_alias = _parser("export", "bpnet-export").parse_args(argv)
    ours = {k: v for k, v in vars(via_bpnet).items() if not k.startswith("_") and k != "command"}
    assert ours == vars(via_alias)


def test_python_m_evaluation_is_the_evaluate_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bodypose_exporter.evaluation", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.startswith("usage: python -m bodypose_exporter.evaluation ")
    assert "--max_ap_drop" in done.stdout


def test_help_does_not_import_tensorflow_or_tensorrt() -> None:
    code = (
        "import sys\n"
        "from bodypose_exporter.cli import main\n"
        "main.build_parser()\n"
        "print(sorted(m for m in ('tensorflow', 'tensorrt', 'tf2onnx') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_user_error_exit_code_and_termination_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "termination-log"
    monkeypatch.setenv("BODYPOSE_TERMINATION_LOG", str(log))
    code = cli_main.build_main(
        ["--onnx", str(tmp_path / "missing.onnx"), "--engine_file", str(tmp_path / "e.engine"),
         "--engine_backend", "onnxruntime", "--reference", str(tmp_path / "r.npz")]
    )  # fmt: skip
    assert code == 2
    assert "bpnet-build: error: ONNX model" in capsys.readouterr().err
    result = json.loads(log.read_text())
    assert result["stage"] == "build" and result["ok"] is False
    assert result["reason"] == "NotFound"


def test_inspect_cal_bin_tensorfile_and_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np

    from bodypose_exporter.calibration import calibration_cache
    from bodypose_exporter.calibration.tensorfile import TensorFileWriter

    cal = tmp_path / "cal.bin"
    calibration_cache.write(
        cal, calibration_cache.CalibrationCache.from_amax({"input_1:0": 1.0}, "10.3.0")
    )
    tensors = tmp_path / "calib.tensorfile"
    with TensorFileWriter(tensors) as writer:
        writer.write(np.zeros((2, 8, 16, 3), np.float32))
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"schema": "s", "command": "build", "artifacts": []}))
    assert cli_main.main(["inspect", str(cal)]) == 0
    assert cli_main.main(["inspect", str(tensors)]) == 0
    assert cli_main.main(["inspect", str(tmp_path / "bpnet_model.224.320.fp32.engine")]) == 0
    out = capsys.readouterr().out
    assert "cal.bin TRT-100300-EntropyCalibration2: 1 tensors" in out
    assert "input_1:0: amax 1" in out
    assert "tensorfile 1 batches of 2x8x16x3" in out
    assert "manifest s, command build" in out
