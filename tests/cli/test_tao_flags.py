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


def test_data_type_takes_taos_values() -> None:
    assert set(action(parser(), "--data_type").choices or ()) == TAO_DATA_TYPES
