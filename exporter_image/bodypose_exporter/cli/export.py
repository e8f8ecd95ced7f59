"""`bpnet export` (`bpnet-export`): a TAO BodyPoseNet model exported with TAO's export flags.

Flag names and defaults follow TAO's bpnet export
(NVIDIA/tao_tensorflow1_backend `nvidia_tao_tf1/cv/bpnet/scripts/export.py`
and the TAO BodyPoseNet documentation), so TAO's documentation still reads
true; where this tool differs it says so in `--help` and in its errors.
Every flag TAO's parser takes is taken (`tao model bpnet export` command lines
run as written): where one does nothing in a run (calibration flags without
int8, engine flags without --engine_file, `-r`, `--static_batch_size`,
`--opt_batch_size`), one log line says so (`tao_flags`). Flags of this tool's
own that would do nothing fail loudly instead of being ignored.

The work is the export stage (`stages.export`), then, with `--engine_file`,
the build stage on its artifacts (`stages.build.build_after_export`).
`--engine_file` naming a directory (trailing `/` or an existing one) gets
TAO's name, `bpnet_model.$H.$W.$precision.engine` (`.deploy.engine` with
`--sdk_compatible_model`).
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

from bodypose_contract.manifest import Key
from bodypose_exporter import __version__
from bodypose_exporter.cli import args as groups
from bodypose_exporter.cli import tao_flags
from bodypose_exporter.cli.paths import PathKind, mark
from bodypose_exporter.engines.base import EngineOptions
from bodypose_exporter.engines.naming import resolve_engine_file
from bodypose_exporter.engines.registry import require_available
from bodypose_exporter.errors import UserError
from bodypose_exporter.evaluation.artifact_ap import EvaluationRequest
from bodypose_exporter.manifest import Kind, artifact_path
from bodypose_exporter.model.dims import InputDims
from bodypose_exporter.result import report_success
from bodypose_exporter.stages.build import BuildInputs, BuildStageRequest
from bodypose_exporter.stages.calibrate import CalibrationRequest

log = logging.getLogger("bpnet-export")

HELP = "export a .tlt to .etlt, ONNX and manifest.json (int8: calibrate too; optionally build)"
STAGE = "export"
KEY_ENV = "BODYPOSE_MODEL_KEY"

EPILOG = """\
examples:
  bpnet-export -m model.tlt -k $KEY -d 320,448,3
      writes model.etlt, model.onnx and manifest.json beside model.tlt
  bpnet-export -m s3://models/bpnet/model.tlt -k $KEY -d 288,384,3 \\
      -o s3://artifacts/bpnet/288x384/model.etlt --sdk_compatible_model
      reads and writes S3 (endpoint and credentials from the AWS_* environment)
  bpnet-export -m model.tlt -k $KEY -d 320,448,3 --data_type int8 \\
      --cal_image_dir s3://data/coco/val2017 --batches 500 --batch_size 8
      also calibrates: cal.bin (TensorRT's cache), model.qdq.onnx, calibration.json
  bpnet-export -m model.tlt -k $KEY -d 320,448,3 --engine_file out/ \\
      --engine_backend onnxruntime
      also builds and verifies an engine (here the CPU one) in the same run
  bpnet-export -m model.tlt -k $KEY -d 320,448,3 --sdk_compatible_model \\
      --eval_annotations s3://data/person_keypoints_val.json --eval_images s3://data/val/
      evaluates the FP32 model's OKS AP (evaluation.json, the builds' reference) and
      publishes the plain .onnx (evaluated) and the SDK-compatible .deploy.onnx

outputs: the .etlt (encrypted ONNX, input-name length 0), the plain .onnx
(TAO 5 and current DeepStream read it directly) and manifest.json (sizes,
sha256, tensor names, versions, timings); with int8 also cal.bin, the QDQ
model and its agreement with FP32 on held-back images. Nothing is left at the
output path when a run fails. Exit codes: 0 ok, 2 bad input, 3 a fidelity or
verification gate failed. `bpnet export` is the same command.
"""

#: Flags only `--engine_file` uses (given without it they are refused): the fields of the
#: engine's types their metadata marks so, and the gate flags.
ENGINE_ONLY = groups.engine_only_flags(
    EngineOptions, *groups.backend_option_types(), BuildInputs, BuildStageRequest
)


def configure(p: argparse.ArgumentParser) -> None:
    p.description = "Export a trained TAO BodyPoseNet (.tlt) to .etlt and ONNX."
    p.epilog = EPILOG
    model = p.add_argument(
        "-m", "--model", required=True, help="the .tlt model: a path or s3:// URI"
    )
    mark(model, PathKind.READ_FILE, label="model")
    groups.add_key(p)
    output_file = p.add_argument(
        "-o",
        "--output_file",
        default=None,
        help="the .etlt to write (path or s3:// URI; default: <model>.etlt). "
        "The .onnx and manifest.json go beside it.",
    )
    mark(output_file, PathKind.WRITE_FILE, example="bpnet_model.etlt")
    spec = p.add_argument(
        "-e", "--experiment_spec", default=None, help="TAO experiment spec (YAML): normalization"
    )
    mark(spec, PathKind.READ_FILE, label="experiment spec")
    groups.add_input_dims(p, tao_short=True)
    p.add_argument(
        "-t",
        "--backend",
        default="tfonnx",
        choices=["tfonnx", "onnx", "uff"],
        help="conversion backend: tfonnx (the default; tf2onnx); onnx (TAO's default, "
        "keras2onnx) is taken and converted with tf2onnx too; uff is refused",
    )
    groups.add_data_type(p, export=True)
    groups.add_calibration(p, export=True)
    groups.add_force_ptq(p)
    groups.add_engine(p, export=True)
    engine_file = p.add_argument(
        "--engine_file",
        default=None,
        help="also build, verify and write this engine (a directory gets TAO's name "
        "bpnet_model.H.W.precision.engine); see --engine_backend",
    )
    mark(engine_file, PathKind.ENGINE_FILE_OR_DIR)
    p.add_argument(
        "--sdk_compatible_model",
        action="store_true",
        help="add the upsampling DeepStream's bodypose2d app expects "
        "(outputs conv2d_transpose_1/BiasAdd:0 and heatmap_out/BiasAdd:0)",
    )
    p.add_argument(
        "-u",
        "--upsample_ratio",
        type=int,
        default=4,
        help="PAF upsampling for --sdk_compatible_model",
    )
    groups.add_codec(p)
    groups.add_backend(p, export=True)
    groups.add_backend_arguments(p, export=True)
    groups.add_serving(p)
    groups.add_reference_images(p)
    groups.add_gates(p)
    groups.add_evaluation(p, build=False)
    tao_flags.add_unused(p)
    groups.add_verbose(p)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")


def calibration_request(args: argparse.Namespace) -> CalibrationRequest | None:
    """The int8 flags; given without `--data_type int8` they are TAO's flags that TAO takes
    with any precision (its parser, `tao_flags`), so each gets one log line saying it is not
    used, never a silent drop."""
    flags = {  # flag: (CalibrationRequest field, value)
        "--force_ptq": ("force_ptq", args.force_ptq),
        "--cal_image_dir": ("image_dir", args.cal_image_dir),
        "--cal_data_file": ("data_file", args.cal_data_file),
        "--cal_cache_file": ("cache_file", args.cal_cache_file),
        "--batches": ("batches", args.batches),
        "--batch_size": ("batch_size", args.batch_size),
    }
    given = {flag: field for flag, field in flags.items() if field[1] is not None}
    if args.data_type != "int8":
        for flag, (_, value) in given.items():
            tao_flags.not_used(flag, value, tao_flags.calibration_reason(flag, args.data_type))
        return None
    # Flags left out take CalibrationRequest's defaults (TAO's).
    return CalibrationRequest(method=args.cal_method, **dict(given.values()))


def plan_engine(args: argparse.Namespace, height: int, width: int) -> BuildStageRequest | None:
    """The engine to build after the export (its inputs are the export's own artifacts,
    filled in by `stages.build.build_from_export`), or None; fails before any work on a
    bad request."""
    if args.engine_file is None:
        given = {flag: getattr(args, attr) for flag, attr in ENGINE_ONLY.items()
                 if getattr(args, attr) is not None}  # fmt: skip
        # TAO's own engine flags are taken without an engine, as TAO takes them: one log
        # line each; this tool's own would do nothing and are refused.
        ours = [flag for flag in given if flag not in tao_flags.TAO_ENGINE_FLAGS]
        if ours:
            raise UserError(
                f"{', '.join(ours)}: only used when building an engine; add --engine_file"
            )
        for flag, value in given.items():
            tao_flags.not_used(flag, value, tao_flags.NO_ENGINE)
        return None
    options = groups.engine_options(args)
    require_available(options.backend)
    if options.max_batch_size < 1:
        raise UserError(f"--max_batch_size must be at least 1, got {options.max_batch_size}")
    if args.max_workspace_size is not None and args.max_workspace_size < 1:
        raise UserError(
            f"--max_workspace_size must be a positive number of bytes, got "
            f"{args.max_workspace_size}"
        )
    # With an evaluation set the engine built here is the plain (evaluated) one; the
    # SDK-compatible engine goes beside it as .deploy.engine.
    both = args.sdk_compatible_model and args.eval_annotations is not None
    return BuildStageRequest(
        engine=options,
        engine_file=resolve_engine_file(
            args.engine_file, height, width, args.data_type, args.sdk_compatible_model and not both
        ),
        # The export's artifacts, filled in after it (a cal.bin named only by the flag).
        inputs=BuildInputs(
            onnx="",
            reference_images=args.reference_images,
            calibration_cache=args.cal_cache_file,
            timing_cache=args.timing_cache,
            timing_cache_dir=args.timing_cache_dir,
        ),
        triton_repository=args.triton_repository,
        deepstream_config=args.deepstream_config,
        gates=groups.gate_overrides(args),
    )


def validate(args: argparse.Namespace) -> None:
    if args.backend == "uff":
        # TAO's parser offers uff, but no TensorRT this tool builds for reads UFF (its
        # parser left TensorRT in 10.0): an output nothing could load is refused.
        raise UserError(
            "-t/--backend uff: BodyPoseNet export supports only ONNX (-t tfonnx, the default, "
            "or -t onnx); uff is not supported"
        )
    tao_flags.note_backend(args.backend)
    if args.data_format != "channels_last":
        raise UserError(
            "--data_format channels_first is not supported: BodyPoseNet is trained and exported "
            "channels_last (NHWC)"
        )
    if args.upsample_ratio < 1:
        raise UserError(f"-u/--upsample_ratio must be at least 1, got {args.upsample_ratio}")


def evaluation_request(args: argparse.Namespace) -> EvaluationRequest | None:
    """The FP32 model's evaluation set, or None; bad combinations refused before any work."""
    groups.check_evaluation(args, build=False)
    if args.eval_annotations is None:
        return None
    return EvaluationRequest(args.eval_annotations, args.eval_images, args.eval_max_images)


def verification_line(export_manifest: dict[str, Any]) -> str:
    verification = export_manifest.get("engine", {}).get("verification", {})
    if verification.get("run") is False:
        return f"verification not run: {verification.get(Key.NOT_RUN_REASON)}"
    figures = verification.get("figures", {})
    shown = ", ".join(f"{k} {v:.4g}" for k, v in figures.items())
    return f"verification {shown}  {'passed' if verification.get('passed') else 'FAILED'}"


def evaluation_line(block: dict[str, Any]) -> str:
    """The FP32 figures (AP points) as one line."""
    shown = ", ".join(f"{k} {v:.2f}" for k, v in block["figures"].items())
    note = f"  ({block['note']})" if block.get("note") else ""
    return f"evaluation FP32 {shown} on {block['images']} images{note}"


def run(args: argparse.Namespace) -> int:
    # Lazy: the export stage imports TensorFlow (seconds of start-up), which
    # `bpnet --help` and the other commands must not pay for.
    from bodypose_exporter.stages.export import ExportRequest, default_output, run_export

    validate(args)
    tao_flags.note_unused(args)
    dims = InputDims.parse(args.input_dims)
    calibration = calibration_request(args)
    evaluation = evaluation_request(args)
    engine_plan = plan_engine(args, dims.height, dims.width)
    if args.data_type == "fp16":
        log.info(
            "--data_type fp16: the .etlt and .onnx stay FP32; the FP16 mixed-precision "
            "model <model>.fp16.onnx is published beside them for fp16 engines"
        )
    request = ExportRequest(
        model=args.model,
        key=args.key if args.key is not None else os.environ.get(KEY_ENV, ""),
        output=tao_flags.etlt_output(args.output_file) or default_output(args.model),
        dims=dims,
        sdk_compatible=args.sdk_compatible_model,
        upsample_ratio=args.upsample_ratio,
        codec=args.codec,
        experiment_spec=args.experiment_spec,
        data_type=args.data_type,
        calibration=calibration,
        evaluation=evaluation,
    )
    result = run_export(request, engine_plan)
    for artifact in result.manifest["artifacts"]:
        print(
            f"{artifact['kind']:5} {artifact['path']}  {artifact['bytes']} bytes  "
            f"sha256 {artifact['sha256']}"
        )
    if engine_plan is not None:
        print(verification_line(result.manifest))
    if "evaluation" in result.manifest:
        print(evaluation_line(result.manifest["evaluation"]))
    print(f"manifest {result.manifest_uri}")
    if calibration is not None:
        note_cache_copy(
            calibration.cache_file, artifact_path(result.manifest, Kind.CALIBRATION_CACHE)
        )
    report_success(STAGE, result.manifest)
    return 0


def note_cache_copy(cache_file: str, published: str | None) -> None:
    """`--cal_cache_file NAME` is written (or reused) at NAME; the export also publishes a copy
    under its fixed name beside the .etlt. When the two differ, say why the second stays."""
    if published is None or tao_flags.same_place(cache_file, published):
        return
    log.info(
        "--cal_cache_file %s: written there as asked; the copy %s beside the .etlt stays "
        "because manifest.json lists the export's artifacts under fixed names, and build "
        "Jobs (bpnet-build --cal_cache_file <prefix>/cal.bin) read it there",
        cache_file, published,
    )  # fmt: skip
