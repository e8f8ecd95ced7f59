"""`bpnet-export`: export a TAO BodyPoseNet model, with the flags of `tao model bpnet export`.

Flag names and defaults follow TAO's bpnet export
(NVIDIA/tao_tensorflow1_backend `nvidia_tao_tf1/cv/bpnet/scripts/export.py`
and the TAO BodyPoseNet documentation), so TAO's documentation still reads
true; where this tool differs it says so in `--help` and in its errors.
Flags that would do nothing in a run (calibration flags without int8, engine
flags without --engine_file) fail loudly instead of being ignored.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bodypose_exporter import __version__
from bodypose_exporter.cli_engine import (
    add_engine_flags,
    build_engine,
    plan_engine,
    verification_line,
)
from bodypose_exporter.codec.registry import CODEC_CHOICES
from bodypose_exporter.errors import UserError
from bodypose_exporter.result import report_failure, report_success

if TYPE_CHECKING:
    from bodypose_exporter.stages.calibrate import CalibrationRequest

log = logging.getLogger("bpnet-export")

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

outputs: the .etlt (encrypted ONNX, input-name length 0), the plain .onnx
(TAO 5 and current DeepStream read it directly) and manifest.json (sizes,
sha256, tensor names, versions, timings); with int8 also cal.bin, the QDQ
model and its agreement with FP32 on held-back images. Nothing is left at the
output path when a run fails. Exit codes: 0 ok, 2 bad input, 3 a fidelity or
verification gate failed.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bpnet-export",
        description="Export a trained TAO BodyPoseNet (.tlt) to .etlt and ONNX.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-m", "--model", required=True, help="the .tlt model: a path or s3:// URI")
    p.add_argument(
        "-k",
        "--key",
        default=None,
        help="the key the model was encrypted with (default: $BODYPOSE_MODEL_KEY, so that a "
        "Job passes it from a Secret without putting it in its args)",
    )
    p.add_argument(
        "-o",
        "--output_file",
        default=None,
        help="the .etlt to write (path or s3:// URI; default: <model>.etlt). "
        "The .onnx and manifest.json go beside it.",
    )
    p.add_argument(
        "-e", "--experiment_spec", default=None, help="TAO experiment spec (YAML): normalization"
    )
    p.add_argument(
        "-d",
        "--input_dims",
        default="256,256,3",
        help="height,width,channels of the network input, channels_last (default: 256,256,3); "
        "height and width multiples of 8, preferably of 16, 32 or 64",
    )
    p.add_argument(
        "-t",
        "--backend",
        default="tfonnx",
        choices=["tfonnx", "onnx", "uff"],
        help="conversion backend; BodyPoseNet supports only tfonnx (the default)",
    )
    p.add_argument(
        "--data_type",
        default="fp32",
        choices=["fp32", "fp16", "int8"],
        help="precision of the TensorRT engine (default: fp32); the .etlt is the same for all",
    )
    p.add_argument(
        "--cal_image_dir", default=None,
        help="int8: calibration images (.jpg, .jpeg, .png), a directory or an s3:// prefix; "
        "at least --batches x --batch_size of them, preprocessed as TAO's strict mode",
    )  # fmt: skip
    p.add_argument(
        "--cal_data_file", default=None,
        help="int8: calibration tensorfile (path or s3://): used if it exists, else written "
        "from --cal_image_dir",
    )  # fmt: skip
    p.add_argument(
        "--cal_cache_file", default=None,
        help="int8: calibration cache (path or s3://; default ./cal.bin): reused if it exists "
        "(calibration skipped), else written",
    )  # fmt: skip
    p.add_argument(
        "--cal_method", default="entropy", choices=["entropy", "minmax", "percentile"],
        help="int8: how each tensor's range is chosen (default: entropy, TensorRT's KL search)",
    )  # fmt: skip
    p.add_argument(
        "--batches", type=int, default=None, help="int8: calibration batches (default: 10)"
    )
    p.add_argument(
        "--batch_size", type=int, default=None, help="int8: images per batch (default: 1)"
    )
    p.add_argument("--max_batch_size", type=int, default=None, help="engine max batch (default: 1)")
    p.add_argument(
        "--max_workspace_size",
        type=int,
        default=None,
        help="engine workspace bytes (default: 2 GiB)",
    )
    p.add_argument(
        "--engine_file",
        default=None,
        help="also build, verify and write this engine (a directory gets TAO's name "
        "bpnet_model.H.W.precision.engine); see --engine_backend",
    )
    p.add_argument(
        "--force_ptq", action="store_true", default=None, help="force post-training quantization"
    )
    p.add_argument(
        "-s",
        "--strict_type_constraints",
        action="store_true",
        default=None,
        help="make TensorRT obey the requested precision",
    )
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
    p.add_argument(
        "--data_format",
        default="channels_last",
        choices=["channels_last", "channels_first"],
        help="input layout; BodyPoseNet is trained channels_last (NHWC)",
    )
    p.add_argument(
        "--codec",
        default="auto",
        choices=CODEC_CHOICES,
        help="model-file cipher: NVIDIA's (inside TAO containers, byte-compatible with TAO and "
        "DeepStream), our open one, or auto (NVIDIA's when present)",
    )
    add_engine_flags(p)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


def _calibration_request(args: argparse.Namespace) -> CalibrationRequest | None:
    """The int8 flags; given without `--data_type int8` they are refused, never ignored."""
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
        if given:
            raise UserError(
                f"{', '.join(given)}: only used with --data_type int8 (INT8 calibration); "
                f"this run is {args.data_type}"
            )
        return None
    from bodypose_exporter.stages.calibrate import CalibrationRequest

    # Flags left out take CalibrationRequest's defaults (TAO's).
    return CalibrationRequest(method=args.cal_method, **dict(given.values()))


def _validate(args: argparse.Namespace) -> None:
    if args.backend in ("onnx", "uff"):
        raise UserError(
            f"-t/--backend {args.backend}: BodyPoseNet export supports only the tfonnx backend "
            "(-t tfonnx, the default); onnx and uff are not supported"
        )
    if args.data_format != "channels_last":
        raise UserError(
            "--data_format channels_first is not supported: BodyPoseNet is trained and exported "
            "channels_last (NHWC)"
        )
    if args.upsample_ratio < 1:
        raise UserError(f"-u/--upsample_ratio must be at least 1, got {args.upsample_ratio}")


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s [bpnet-export] %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not verbose:
        for noisy in ("tensorflow", "tf2onnx", "absl", "h5py", "botocore", "boto3", "s3transfer"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    try:
        from bodypose_exporter.stages.export import (
            ExportRequest,
            InputDims,
            default_output,
            run_export,
        )

        _validate(args)
        dims = InputDims.parse(args.input_dims)
        calibration = _calibration_request(args)
        engine_plan = plan_engine(args, dims.height, dims.width)
        if args.data_type == "fp16":
            log.info("--data_type fp16 applies to engines; the .etlt and .onnx are precision-free")
        request = ExportRequest(
            model=args.model,
            key=args.key if args.key is not None else os.environ.get(KEY_ENV, ""),
            output=args.output_file or default_output(args.model),
            dims=dims,
            sdk_compatible=args.sdk_compatible_model,
            upsample_ratio=args.upsample_ratio,
            codec=args.codec,
            experiment_spec=args.experiment_spec,
            data_type=args.data_type,
            calibration=calibration,
        )
        result = run_export(request)
        if engine_plan is not None:
            build_engine(engine_plan, result.manifest, result.published[-1])
    except UserError as exc:
        log.error("%s", exc)
        print(f"bpnet-export: error: {exc}", file=sys.stderr)
        report_failure("export", exc.reason, str(exc))
        return exc.exit_code
    for artifact in result.manifest["artifacts"]:
        print(
            f"{artifact['kind']:5} {artifact['path']}  {artifact['bytes']} bytes  "
            f"sha256 {artifact['sha256']}"
        )
    if engine_plan is not None:
        print(verification_line(result.manifest))
    print(f"manifest {result.published[-1]}")
    report_success("export", result.manifest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
