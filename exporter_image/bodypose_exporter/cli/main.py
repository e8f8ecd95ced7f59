"""`bpnet`: one dispatcher over the subcommands, and the TAO-compatible aliases.

    bpnet export|build|calibrate|sample|evaluate|inspect ...
    bpnet-export ...   = bpnet export ...   (the flags of `tao model bpnet export`)
    bpnet-build ...    = bpnet build ...    (what the operator's build Jobs run)
    bpnet-sample ...   = bpnet sample ...
    python -m bodypose_exporter.evaluation ... = bpnet evaluate ...

Logging set-up and the handling of `UserError` (one line on stderr, the
Job's termination message, the error's exit code) live here and nowhere
else. Followed: Polygraphy's `polygraphy/tools/_main.py` (one parser with a
subparser per registered tool; user errors end the run without a
traceback) and kopf's single CLI module with subcommands (nolar/kopf
`kopf/cli.py`).

Exit codes: 0 ok, 2 bad input (argparse's usage errors too), 3 a fidelity,
verification or AP gate failed.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

from bodypose_exporter import __version__
from bodypose_exporter.cli import paths, registry
from bodypose_exporter.errors import UserError
from bodypose_exporter.result import report_failure

#: Libraries whose INFO lines say nothing to a user; shown with -v.
NOISY_LOGGERS = ("tensorflow", "tf2onnx", "absl", "h5py", "botocore", "boto3", "s3transfer")

EPILOG = """\
examples:
  bpnet sample -o sample -k nvidia_tlt
  bpnet export -m sample/bpnet_sample.tlt -k nvidia_tlt -d 320,448,3
  bpnet build --onnx sample/bpnet_sample.onnx --reference sample/reference.npz \\
      --engine_backend onnxruntime --engine_file sample/cpu/bpnet_model.320.448.fp32.engine
  bpnet inspect sample/bpnet_sample.etlt -k nvidia_tlt
  bpnet COMMAND --help      every command's flags and examples

bpnet-export, bpnet-build and bpnet-sample are the same commands under the
names (and the flags) TAO's documentation and the operator's Jobs use.
"""


def configure_logging(prog: str, verbose: bool, quiet: Sequence[str] = ()) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format=f"%(asctime)s [{prog}] %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not verbose:
        for noisy in NOISY_LOGGERS:
            logging.getLogger(noisy).setLevel(logging.WARNING)
        for name in quiet:
            logging.getLogger(name).setLevel(logging.ERROR)


def run_command(command: ModuleType, args: argparse.Namespace, prog: str) -> int:
    """Run a parsed command: logging first, then its `run`; a UserError ends it cleanly."""
    configure_logging(prog, getattr(args, "verbose", False), getattr(command, "QUIET", ()))
    try:
        # Every path flag the parser declares, before any work (`cli.paths`).
        paths.check(getattr(args, "_paths", ()), args)
        code: int = command.run(args)
    except UserError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        explain = getattr(command, "explain", None)
        if explain is not None:
            explain(exc)
        if command.STAGE is not None:
            report_failure(command.STAGE, exc.reason, str(exc))
        return exc.exit_code
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bpnet",
        description="Turn a trained TAO BodyPoseNet model into deployable artifacts: the .etlt "
        "and ONNX model, INT8 calibration, and verified engines.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in registry.COMMANDS:
        command = registry.command(name)
        sub = subparsers.add_parser(
            name,
            help=command.HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.configure(sub)
        sub.set_defaults(_command=command, _paths=paths.flags_of(sub))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """`bpnet COMMAND ...`."""
    args = build_parser().parse_args(argv)
    return run_command(args._command, args, f"bpnet {args.command}")


def _alias(name: str, prog: str, argv: Sequence[str] | None) -> int:
    command = registry.command(name)
    parser = argparse.ArgumentParser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    command.configure(parser)
    parser.set_defaults(_paths=paths.flags_of(parser))
    return run_command(command, parser.parse_args(argv), prog)


def export_main(argv: Sequence[str] | None = None) -> int:
    """`bpnet-export`: `bpnet export` under TAO's name."""
    return _alias("export", "bpnet-export", argv)


def build_main(argv: Sequence[str] | None = None) -> int:
    """`bpnet-build`: `bpnet build`, as the operator's build Jobs run it."""
    return _alias("build", "bpnet-build", argv)


def sample_main(argv: Sequence[str] | None = None) -> int:
    """`bpnet-sample`: `bpnet sample`."""
    return _alias("sample", "bpnet-sample", argv)


def evaluate_main(argv: Sequence[str] | None = None) -> int:
    """`python -m bodypose_exporter.evaluation`: `bpnet evaluate`."""
    return _alias("evaluate", "python -m bodypose_exporter.evaluation", argv)


if __name__ == "__main__":
    sys.exit(main())
