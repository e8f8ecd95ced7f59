"""`bpnet build` (`bpnet-build`): build and verify one engine from the export stage's artifacts.

The operator runs it in each target pool's build Job; people can run it too.
Flag names follow `bpnet-export` (and so TAO) where they mean the same thing;
the flags are shared with it through `cli.args`. The work is the build stage
(`stages.build.run_build`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bodypose_exporter.cli import args as groups
from bodypose_exporter.cli.paths import PathKind, mark
from bodypose_exporter.engines.capabilities import ShowsExamples
from bodypose_exporter.engines.registry import BACKEND_MODULES, BACKENDS
from bodypose_exporter.errors import UserError
from bodypose_exporter.manifest import Kind
from bodypose_exporter.result import report_success
from bodypose_exporter.stages.build import (
    BuildInputs,
    BuildStageRequest,
    EngineApDropError,
    run_build,
)
from bodypose_exporter.verification import latency
from bodypose_exporter.verification.agreement_gates import VerificationError

HELP = (
    f"build one engine ({', '.join(BACKENDS)}) from the export's artifacts, verified where "
    "it can run"
)
STAGE = "build"

NOTES = """
Beside the engine: a Triton model repository entry (triton/bpnet/config.pbtxt,
1/model.plan or 1/model.onnx) and DeepStream's bodypose2d_pgie_config.txt,
listed in manifest.json; --triton_repository and --deepstream_config write
them elsewhere too. An engine's file name carries what its backend built it for
(bpnet_model.320.448.fp16.sm86.trt10.8.0.43.engine: compute capability 8.6,
TensorRT 10.8.0.43, no hardware compatibility); an artifact that is an ONNX
model is named .onnx.

The engine is run on the reference inputs and compared with the FP32 outputs
against the gates of its precision; a failed gate publishes no engine (only
manifest.rejected.json) and exits 3. An engine that cannot run here (one built
ahead of time for GPUs this pod has none of) is published as built, not run, and
its manifest says why. Exit codes: 0 built (and verified where it ran), 2 bad
input, 3 the engine failed its gate. `bpnet build` is the same command.
"""


def epilog() -> str:
    """The examples each registered backend gives (`capabilities.ShowsExamples`), then
    the notes every build shares: this module names no backend."""
    examples = [
        facts.help_examples
        for facts, _ in BACKEND_MODULES.values()
        if isinstance(facts, ShowsExamples) and facts.help_examples
    ]
    return "examples:\n" + "".join(examples) + NOTES


def configure(p: argparse.ArgumentParser) -> None:
    p.description = (
        f"Build a BodyPoseNet engine with one of the backends ({', '.join(BACKENDS)}), for "
        "this machine's hardware or, where the backend builds ahead of time, for named GPUs, "
        "and verify it against the FP32 reference the export kept wherever it can run."
    )
    p.epilog = epilog()
    onnx = p.add_argument("--onnx", required=True, help="the FP32 ONNX model (path or s3://)")
    mark(onnx, PathKind.READ_FILE, label="ONNX model")
    reference = p.add_argument("--reference", default=None, help="reference.npz from the export")
    mark(reference, PathKind.READ_FILE)
    reference_images = p.add_argument(
        "--reference_images", default=None,
        help="a local directory of images to verify on instead (FP32 reference computed here)",
    )  # fmt: skip
    mark(reference_images, PathKind.READ_DIR)
    engine_file = p.add_argument(
        "--engine_file", required=True, help="engine to write (path or s3://)"
    )
    # A directory is refused: the Jobs' name needs the model's size (bpnet-export, which
    # knows it, puts that name into a directory).
    jobs_name = "bpnet_model.<height>.<width>.<precision>.engine (the name the Jobs use)"
    mark(engine_file, PathKind.WRITE_FILE, example=jobs_name)
    groups.add_data_type(p, export=False)
    groups.add_engine(p, export=False)
    groups.add_calibration(p, export=False, images=False)
    mark(p.add_argument("--qdq_model", default=None, help="QDQ ONNX model (int8)"),
         PathKind.READ_FILE)  # fmt: skip
    fp16_model = p.add_argument(
        "--fp16_model", default=None,
        help="the FP16 mixed-precision ONNX model bpnet-export --data_type fp16 publishes "
        "(<model>.fp16.onnx): strongly typed TensorRT and TensorRT-RTX fp16 engines are "
        "built from it",
    )  # fmt: skip
    mark(fp16_model, PathKind.READ_FILE)
    groups.add_backend(p, export=False)
    groups.add_backend_arguments(p, export=False)
    groups.add_serving(p)
    groups.add_gates(p)
    groups.add_evaluation(p, build=True)
    deploy_onnx = p.add_argument(
        "--deploy_onnx", default=None, metavar="URI_OR_PATH",
        help="the export's SDK-compatible <model>.deploy.onnx (path or s3://): after the "
        "engine of --onnx passes its gates, also build this one's engine from the same "
        "calibration and publish it beside (<engine>.deploy.engine, its own Triton model "
        "bpnet_deploy and DeepStream config)",
    )  # fmt: skip
    mark(deploy_onnx, PathKind.READ_FILE)
    p.add_argument(
        "--target_identity", default=None, metavar="ID",
        help="recorded as targetIdentity in the manifest (the operator passes the identity "
        "of the target the engine is for, and takes a published engine only for the "
        "identity it records)",
    )  # fmt: skip
    p.add_argument(
        "--latency_budget", type=seconds_above_zero, default=None, metavar="SECONDS",
        help="how long each latency figure of the verified engine may take on this node "
        "(batch 1, the largest batch, int8 against fp32): the warm-up until the median "
        f"settles at most half of it, then {latency.RUNS} timed runs, fewer where they "
        f"would take longer, never under {latency.MIN_RUNS}; the manifest records the runs "
        f"and the budget (default {latency.BUDGET_SECONDS:g}; the operator passes its Helm "
        "value jobs.latencyBudgetSeconds)",
    )  # fmt: skip
    groups.add_verbose(p)


def seconds_above_zero(text: str) -> float:
    """A number of seconds above zero, for argparse (its message names the flag)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"a number of seconds above 0, got {text!r}")
    return value


def evaluation_line(block: dict[str, Any]) -> str:
    """The engine's AP and its drop (AP points) as one line."""
    return (
        f"evaluation AP {block['figures']['AP']:.2f} vs FP32 {block['reference']['AP']:.2f}, "
        f"drop {block['apDrop']:.2f} AP points (limit {block['maxApDrop']:g}) on "
        f"{block['images']} images  {'passed' if block['passed'] else 'FAILED'}"
    )


def explain(exc: UserError) -> None:
    """After the error line: the figures of a failed verification."""
    if isinstance(exc, VerificationError):
        figures = exc.verdict.figures
        print(
            "verification " + ", ".join(f"{k} {v:.4g}" for k, v in figures.items()),
            file=sys.stderr,
        )
    if isinstance(exc, EngineApDropError) and exc.manifest and "evaluation" in exc.manifest:
        print(evaluation_line(exc.manifest["evaluation"]), file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    groups.check_evaluation(args, build=True)
    result = run_build(
        BuildStageRequest(
            engine=groups.engine_options(args),
            engine_file=args.engine_file,
            inputs=BuildInputs(
                onnx=args.onnx,
                reference=args.reference,
                reference_images=args.reference_images,
                calibration_cache=args.cal_cache_file,
                calibration_data=args.cal_data_file,
                qdq_model=args.qdq_model,
                fp16_model=args.fp16_model,
                timing_cache=args.timing_cache,
                timing_cache_dir=args.timing_cache_dir,
                eval_reference=args.eval_reference,
                deploy_onnx=args.deploy_onnx,
            ),
            triton_repository=args.triton_repository,
            deepstream_config=args.deepstream_config,
            gates=groups.gate_overrides(args),
            eval_annotations=args.eval_annotations,
            eval_images=args.eval_images,
            eval_max_images=args.eval_max_images,
            max_ap_drop=args.max_ap_drop,
            target_identity=args.target_identity,
            latency_budget=args.latency_budget,
        )
    )
    engine = result.manifest["artifacts"][0]
    print(f"engine {engine['path']}  {engine['bytes']} bytes  sha256 {engine['sha256']}")
    figures = result.verdict.figures
    if result.verdict.not_run is not None:
        print(f"verification not run: {result.verdict.not_run}")
    else:
        print("verification " + ", ".join(f"{k} {v:.4g}" for k, v in figures.items()) + "  passed")
    if "evaluation" in result.manifest:
        print(evaluation_line(result.manifest["evaluation"]))
    deploy = next(
        (a for a in result.manifest["artifacts"] if a["kind"] == Kind.DEPLOY_ENGINE), None
    )
    if deploy is not None:
        print(f"deploy engine {deploy['path']}  {deploy['bytes']} bytes  sha256 {deploy['sha256']}")
    report_success(STAGE, result.manifest)
    return 0
