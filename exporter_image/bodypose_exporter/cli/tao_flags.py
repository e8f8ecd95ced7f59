"""TAO's `bpnet export` flags that a run of `bpnet-export` takes but may not use.

TAO's parser (NVIDIA/tao_tensorflow1_backend,
`nvidia_tao_tf1/cv/bpnet/scripts/export.py`, `build_command_line_parser`)
takes every one of its flags with every precision, with or without
`--engine_file`: `--batch_size` with fp16, `--max_batch_size` without an
engine, `-r/--results_dir`, `--static_batch_size`, `--opt_batch_size`. A
command line from TAO's guide therefore runs here as written: a flag that
does nothing in this run gets one log line saying so (what TAO does with it,
and what happens here), never a refusal and never a silent drop. Refusals stay
for what cannot be done (`-t uff`, `--data_format channels_first`: see
`cli/export.py`) and for this tool's own flags (`cli/export.py`).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from bodypose_exporter.cli.paths import PathKind, mark
from bodypose_exporter.storage.location import Location

log = logging.getLogger("bpnet-export")

#: TAO's engine-builder flags: taken without --engine_file (TAO builds an engine to check the
#: export either way, and writes it only with --engine_file).
TAO_ENGINE_FLAGS = ("--max_batch_size", "--max_workspace_size", "-s/--strict_type_constraints")

NO_ENGINE = (
    "no engine is built without --engine_file (TAO builds one to check the export and "
    "discards it; here the export is checked with ONNX Runtime against Keras)"
)


def calibration_reason(flag: str, data_type: str) -> str:
    """Why an INT8 flag does nothing in a `data_type` run."""
    reason = f"only INT8 calibration reads it, and this run is {data_type}"
    if flag == "--batch_size":
        # TAO's BpNetExporter.export: max_batch_size = max(batch_size, max_batch_size).
        reason += (
            " (TAO also raises the engine's max batch to it; here --max_batch_size alone "
            "sets the engine's)"
        )
    return reason


def not_used(flag: str, value: object, reason: str) -> None:
    shown = "" if value is True else f" {value}"
    log.info("%s%s: not used: %s", flag, shown, reason)


def add_unused(p: argparse.ArgumentParser) -> None:
    """TAO's flags this exporter has no use for, taken so that TAO's command lines run."""
    results_dir = p.add_argument(
        "-r", "--results_dir", default=None,
        help="TAO: where its status.json goes; taken and not used (this run's record is "
        "manifest.json beside the output)",
    )  # fmt: skip
    # Checked as TAO uses it (it creates the directory), though nothing is written there.
    mark(results_dir, PathKind.WRITE_DIR)
    p.add_argument(
        "--static_batch_size", type=int, default=None,
        help="TAO: a fixed batch for the exported model (default -1, dynamic); taken and not "
        "used: the ONNX model keeps a dynamic batch, engines take --max_batch_size",
    )  # fmt: skip
    p.add_argument(
        "--opt_batch_size", type=int, default=None,
        help="TAO: the engine profile's optimum batch; taken and not used",
    )  # fmt: skip


def note_unused(args: argparse.Namespace) -> None:
    """One log line for each of `add_unused`'s flags given."""
    if args.results_dir is not None:
        not_used(
            "-r/--results_dir", args.results_dir,
            "TAO writes its status.json there; this run's record is manifest.json beside the "
            "output (and, in a Job, its termination message)",
        )  # fmt: skip
    if args.static_batch_size is not None:
        not_used(
            "--static_batch_size", args.static_batch_size,
            "the exported ONNX model keeps a dynamic batch (TAO's default, -1); an engine's "
            "batch range is 1 to --max_batch_size",
        )  # fmt: skip
    if args.opt_batch_size is not None:
        not_used(
            "--opt_batch_size", args.opt_batch_size,
            "TAO sets its engine profile's optimum batch with it; engines here are built "
            "with the backend's own profile from --max_batch_size",
        )  # fmt: skip


def note_backend(backend: str) -> None:
    if backend == "onnx":
        log.info(
            "-t/--backend onnx: converted with tf2onnx as for -t tfonnx (TAO's onnx backend "
            "converts with keras2onnx, which this exporter does not use)"
        )


def etlt_output(output_file: str | None) -> str | None:
    """`-o`, as the export stage takes it (an .etlt). TAO 5 writes plain ONNX at `-o X.onnx`
    (its default `<model>.onnx`); here the plain .onnx goes beside the .etlt under the
    same stem, so `-o X.onnx` names the .etlt X.etlt, and X.onnx is written as asked."""
    if output_file is None or not output_file.endswith(".onnx"):
        return output_file
    etlt = output_file[: -len(".onnx")] + ".etlt"
    log.info(
        "-o/--output_file %s: the plain ONNX model is written there (as TAO 5 does); the "
        "encrypted .etlt goes beside it as %s",
        output_file, etlt,
    )  # fmt: skip
    return etlt


def same_place(a: str, b: str) -> bool:
    """Whether two locations (paths or s3:// URIs) name one file."""
    if Location(a).is_s3 or Location(b).is_s3:
        return a == b
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
