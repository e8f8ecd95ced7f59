"""`bpnet-export` against TAO's BodyPoseNet export documentation, not against ourselves.

`flags_today.json` (test_commands.py) keeps our own parser from drifting; it
cannot say whether that parser is TAO's. The table below is written
independently, from NVIDIA's documentation of `tao model bpnet export`
("Exporting the Model" in
https://docs.nvidia.com/tao/tao-toolkit/text/bodypose_estimation/bodyposenet.html;
the same flags in the 5.3.0 archive,
https://docs.nvidia.com/tao/archive/5.3.0/text/bodypose_estimation/bodyposenet.html):
each flag's names, whether it takes a value, and its documented default (as
that page lists them). Where the documentation states no default, the table
says so and only the flag itself is checked. TAO's own
parser (NVIDIA/tao_tensorflow1_backend `nvidia_tao_tf1/cv/bpnet/scripts/
export.py`) has the same names and defaults but two: its `-t/--backend`
defaults to `onnx` and its default output is `<input file>.onnx` (TAO 5
writes plain ONNX); we follow the documentation on both (`tfonnx`; the
`.etlt`, with the plain `.onnx` beside it).

Our parser is built the way tests/cli builds it (the command's `configure` on a
fresh parser: nothing runs). Several of our flags default to None on purpose
("not given", so that a flag that would do nothing is refused): for those the
default that matters is the one the run takes, so it is read from the request
`cli/export.py` builds from the parsed flags (`calibration_request`,
`plan_engine`, `stages.export.default_output`), still without running
anything.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

import pytest

from bodypose_exporter.cli import export as export_command
from bodypose_exporter.cli import registry

VALUE, SWITCH = "takes a value", "switch"
#: The documentation gives the flag without a default value.
NOT_STATED: Any = object()


@dataclass(frozen=True)
class TaoFlag:
    names: tuple[str, ...]  # as TAO documents them, short form first
    kind: str  # VALUE or SWITCH
    default: Any = NOT_STATED
    required: bool = False


#: `tao model bpnet export`, from the documentation above.
TAO_EXPORT = (
    TaoFlag(("-m", "--model"), VALUE, required=True),
    TaoFlag(("-k", "--key"), VALUE),
    TaoFlag(("-o", "--output_file"), VALUE, default="<input file>.etlt"),
    TaoFlag(("-t", "--backend"), VALUE, default="tfonnx"),
    TaoFlag(("-e", "--experiment_spec"), VALUE),
    TaoFlag(("--data_type",), VALUE, default="fp32"),
    TaoFlag(("-s", "--strict_type_constraints"), SWITCH, default=False),
    TaoFlag(("--cal_image_dir",), VALUE),
    TaoFlag(("--cal_data_file",), VALUE),
    TaoFlag(("--cal_cache_file",), VALUE, default="./cal.bin"),
    TaoFlag(("--batches",), VALUE, default=10),
    TaoFlag(("--batch_size",), VALUE, default=1),
    TaoFlag(("--max_batch_size",), VALUE, default=1),
    TaoFlag(("--max_workspace_size",), VALUE, default=2 * (1 << 30)),
    TaoFlag(("--engine_file",), VALUE),
    TaoFlag(("-d", "--input_dims"), VALUE),
    TaoFlag(("--force_ptq",), SWITCH, default=False),
    TaoFlag(("--sdk_compatible_model",), SWITCH, default=False),
    TaoFlag(("--data_format",), VALUE),
    TaoFlag(("--verbose",), SWITCH, default=False),
)
#: TAO's --data_type values (the documentation: fp32, fp16 or int8).
TAO_DATA_TYPES = {"fp32", "fp16", "int8"}

MODEL = "experiments/bpnet_model.tlt"


def parser() -> argparse.ArgumentParser:
    """bpnet-export's parser, as tests/cli/test_commands.py builds it."""
    p = argparse.ArgumentParser(prog="bpnet-export")
    registry.command("export").configure(p)
    return p


def action(p: argparse.ArgumentParser, name: str) -> argparse.Action:
    (found,) = [a for a in p._actions if name in a.option_strings]
    return found


@pytest.mark.parametrize("flag", TAO_EXPORT, ids=lambda f: f.names[-1])
def test_every_documented_flag_is_ours_by_every_documented_name(flag: TaoFlag) -> None:
    p = parser()
    (dest,) = {action(p, name).dest for name in flag.names}  # all names: one flag
    taken = action(p, flag.names[0])
    takes_value = taken.nargs != 0
    assert (VALUE if takes_value else SWITCH) == flag.kind, dest
    assert taken.required == flag.required, dest


def run_defaults(*extra: str) -> tuple[argparse.Namespace, Any, Any]:
    """The flags as parsed from `-m MODEL extra...`, and the calibration and engine requests
    cli/export.py makes of them (None when the run has none)."""
    args = parser().parse_args(["-m", MODEL, *extra])
    export_command.validate(args)  # TAO's defaults must pass our own checks
    calibration = export_command.calibration_request(args)
    planned = export_command.plan_engine(args, 256, 256)
    # The engine's options (engines.base.EngineOptions), where the build stage reads them.
    return args, calibration, None if planned is None else planned.engine


def effective_defaults() -> dict[str, Any]:
    """What a run given none of these flags uses for each, by TAO's long name."""
    from bodypose_exporter.stages.export import default_output  # imports TensorFlow

    args, _, _ = run_defaults()
    _, calibration, _ = run_defaults("--data_type", "int8", "--cal_image_dir", "images/")
    # An engine needs --engine_file; ONNX Runtime, because TensorRT is not on this machine.
    _, _, engine = run_defaults("--engine_file", "out/", "--engine_backend", "onnxruntime")
    return {
        "--output_file": default_output(args.model) if args.output_file is None else None,
        "--backend": args.backend,
        "--data_type": args.data_type,
        "--strict_type_constraints": engine.strict_types,
        "--cal_cache_file": calibration.cache_file,
        "--batches": calibration.batches,
        "--batch_size": calibration.batch_size,
        "--max_batch_size": engine.max_batch_size,
        "--max_workspace_size": engine.max_workspace_size,
        "--force_ptq": calibration.force_ptq,
        "--sdk_compatible_model": args.sdk_compatible_model,
        "--verbose": args.verbose,
    }


def test_every_documented_default_is_the_one_a_run_takes() -> None:
    documented = {f.names[-1]: f.default for f in TAO_EXPORT if f.default is not NOT_STATED}
    documented["--output_file"] = MODEL.removesuffix(".tlt") + ".etlt"  # <input file>.etlt
    assert effective_defaults() == documented


def test_documented_flags_without_a_default_are_unset_when_not_given() -> None:
    args, calibration, engine = run_defaults()
    assert (calibration, engine) == (None, None)  # fp32, no --engine_file: neither runs
    assert (args.experiment_spec, args.cal_image_dir, args.cal_data_file) == (None, None, None)
    assert args.engine_file is None


def test_documented_values_are_accepted_with_their_types() -> None:
    args, calibration, engine = run_defaults(
        "-k", "nvidia_tlt", "-o", "out/model.etlt", "-t", "tfonnx", "-e", "spec.yaml",
        "--data_type", "int8", "-s", "--cal_image_dir", "images/", "--cal_data_file",
        "calibration.tensor", "--cal_cache_file", "out/cal.bin", "--batches", "20",
        "--batch_size", "4", "--max_batch_size", "8", "--max_workspace_size", "1073741824",
        "--engine_file", "out/bpnet.engine", "--engine_backend", "onnxruntime",
        "-d", "288,384,3", "--force_ptq", "--sdk_compatible_model",
        "--data_format", "channels_last", "--verbose",
    )  # fmt: skip
    assert (args.key, args.output_file, args.experiment_spec) == (
        "nvidia_tlt", "out/model.etlt", "spec.yaml"
    )  # fmt: skip
    assert (args.input_dims, args.data_format, args.verbose) == ("288,384,3", "channels_last", True)
    assert (calibration.image_dir, calibration.data_file, calibration.cache_file) == (
        "images/", "calibration.tensor", "out/cal.bin"
    )  # fmt: skip
    assert (calibration.batches, calibration.batch_size, calibration.force_ptq) == (20, 4, True)
    assert (engine.max_batch_size, engine.max_workspace_size, engine.strict_types) == (
        8, 1 << 30, True
    )  # fmt: skip
    assert args.sdk_compatible_model is True


#: TAO's own parser, transcribed: NVIDIA/tao_tensorflow1_backend at
#: 2ec95cbbe0d74d6a180ea6e989f64d2d97d97712, `nvidia_tao_tf1/cv/bpnet/scripts/export.py`,
#: `build_command_line_parser` (every flag, its names and its default there). TAO parses with
#: `parse_known_args` and uses every flag with every precision, with or without
#: --engine_file (`run_export`, `BpNetExporter.export`); tests/cli/test_tao_guide.py runs
#: the guide's lines.
TAO_PARSER = (
    TaoFlag(("-m", "--model"), VALUE, default=None, required=True),
    TaoFlag(("-k", "--key"), VALUE, default=""),
    TaoFlag(("-o", "--output_file"), VALUE, default=None),
    TaoFlag(("--force_ptq",), SWITCH, default=False),
    TaoFlag(("--cal_data_file",), VALUE, default=""),
    TaoFlag(("--cal_image_dir",), VALUE, default=""),
    TaoFlag(("--data_type",), VALUE, default="fp32"),
    TaoFlag(("-s", "--strict_type_constraints"), SWITCH, default=False),
    TaoFlag(("--cal_cache_file",), VALUE, default="./cal.bin"),
    TaoFlag(("--batches",), VALUE, default=10),
    TaoFlag(("--max_workspace_size",), VALUE, default=2 * (1 << 30)),
    TaoFlag(("--max_batch_size",), VALUE, default=1),
    TaoFlag(("--batch_size",), VALUE, default=1),
    TaoFlag(("-e", "--experiment_spec"), VALUE, default=None),
    TaoFlag(("--engine_file",), VALUE, default=None),
    TaoFlag(("--static_batch_size",), VALUE, default=-1),
    TaoFlag(("-v", "--verbose"), SWITCH, default=False),
    TaoFlag(("-d", "--input_dims"), VALUE, default="256,256,3"),
    TaoFlag(("--sdk_compatible_model",), SWITCH, default=False),
    TaoFlag(("-u", "--upsample_ratio"), VALUE, default=4),
    TaoFlag(("-i", "--data_format"), VALUE, default="channels_last"),
    TaoFlag(("-t", "--backend"), VALUE, default="onnx"),
    TaoFlag(("--opt_batch_size",), VALUE, default=1),
    TaoFlag(("-r", "--results_dir"), VALUE, default=None),
)
#: A value TAO's parser takes for each VALUE flag (its type: str or int, or a choice).
TAO_VALUES = {
    "--data_type": "fp16", "--batches": "4", "--max_workspace_size": "1073741824",
    "--max_batch_size": "2", "--batch_size": "2", "--static_batch_size": "-1",
    "--input_dims": "224,320,3", "--upsample_ratio": "4", "--data_format": "channels_last",
    "--backend": "onnx", "--opt_batch_size": "1",
}  # fmt: skip


@pytest.mark.parametrize("flag", TAO_PARSER, ids=lambda f: f.names[-1])
def test_every_flag_of_taos_parser_is_taken_by_every_name(flag: TaoFlag) -> None:
    """Where the documentation's table above leaves flags out (-r, --static_batch_size,
    --opt_batch_size, -i, -u), TAO's parser has them: a line using them runs there."""
    p = parser()
    (dest,) = {action(p, name).dest for name in flag.names}
    taken = action(p, flag.names[0])
    assert (VALUE if taken.nargs != 0 else SWITCH) == flag.kind, dest
    for name in flag.names:
        value = [TAO_VALUES.get(flag.names[-1], "x")] if flag.kind == VALUE else []
        args = p.parse_args(["-m", MODEL, name, *value] if dest != "model" else [name, MODEL])
        assert getattr(args, dest) not in (None, False), name


#: Where a run's default is not TAO's parser's, and why (the others are checked equal).
PARSER_DIFFERENCES = {
    # TAO 5 writes plain ONNX by default; the documentation (and this tool) the .etlt, with
    # the plain .onnx beside it.
    "--output_file": "<model>.etlt",
    # The documentation's tfonnx: tf2onnx is the converter here (-t onnx is taken too).
    "--backend": "tfonnx",
}


def test_every_default_of_taos_parser_is_the_one_a_run_takes() -> None:
    parsed = parser().parse_args(["-m", MODEL])
    effective = effective_defaults()
    for flag in TAO_PARSER:
        long = flag.names[-1]
        if long in PARSER_DIFFERENCES or long in ("--model", "--engine_file"):
            continue
        if long in effective:
            assert effective[long] == flag.default, long
        elif long == "--key":
            assert parsed.key is None  # then $BODYPOSE_MODEL_KEY, else "" as TAO's
        elif long in ("--static_batch_size", "--opt_batch_size"):
            assert getattr(parsed, long[2:]) is None  # not used here: logged when given
        elif flag.default in ("", None):
            assert getattr(parsed, action(parser(), long).dest) is None, long
        else:
            assert getattr(parsed, action(parser(), long).dest) == flag.default, long


def test_data_type_takes_taos_values() -> None:
    assert set(action(parser(), "--data_type").choices or ()) == TAO_DATA_TYPES
