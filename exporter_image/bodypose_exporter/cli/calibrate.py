"""`bpnet calibrate`: INT8 calibration of an exported FP32 ONNX model, on its own.

The same calibration `bpnet-export --data_type int8` runs (`stages.calibrate`),
with the same flags, for a model already exported: cal.bin (TensorRT's
calibration cache), the QDQ model and calibration.json, plus a manifest.json,
published to `-o/--output_dir`.
"""

from __future__ import annotations

import argparse
import os

from bodypose_exporter.calibration.preprocess import Normalization
from bodypose_exporter.cli import args as groups
from bodypose_exporter.cli.paths import PathKind, mark
from bodypose_exporter.errors import UserError
from bodypose_exporter.model.dims import InputDims
from bodypose_exporter.result import report_success
from bodypose_exporter.stages.calibrate import CalibrationRequest, run_calibrate_stage

HELP = "INT8-calibrate an exported ONNX model: cal.bin, QDQ model, calibration.json"
STAGE = "calibrate"

EPILOG = """\
example:
  bpnet calibrate --onnx sample/bpnet_sample.onnx -d 320,448,3 \\
      --cal_image_dir sample/images --batches 4 --batch_size 2 \\
      --cal_cache_file sample/cal.bin -o sample/int8/
"""


def configure(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Calibrate an exported FP32 BodyPoseNet ONNX model for INT8, as bpnet-export "
        "--data_type int8 does."
    )
    p.epilog = EPILOG
    onnx = p.add_argument(
        "--onnx", required=True, help="the exported FP32 ONNX model (path or s3://)"
    )
    mark(onnx, PathKind.READ_FILE, label="ONNX model")
    groups.add_input_dims(p, default=None)
    groups.add_calibration(p, export=False)
    output_dir = p.add_argument(
        "-o", "--output_dir", default=None,
        help="where cal.bin, the QDQ model, calibration.json and manifest.json are published "
        "(a directory or s3:// prefix; default: beside --onnx)",
    )  # fmt: skip
    mark(output_dir, PathKind.WRITE_DIR)
    groups.add_verbose(p)


def run(args: argparse.Namespace) -> int:
    if args.data_format != "channels_last":
        raise UserError("--data_format channels_first is not supported (BodyPoseNet is NHWC)")
    dims = InputDims.parse(args.input_dims)
    height, width = dims.height, dims.width
    request = CalibrationRequest(
        cache_file=args.cal_cache_file or groups.DEFAULT_CACHE_FILE,
        image_dir=args.cal_image_dir,
        data_file=args.cal_data_file,
        batches=args.batches,
        batch_size=args.batch_size,
        method=args.cal_method,
    )
    output = args.output_dir or (os.path.dirname(args.onnx.rstrip("/")) or ".")
    result = run_calibrate_stage(request, args.onnx, (height, width), output, Normalization())
    for artifact in result.manifest["artifacts"]:
        print(f"{artifact['kind']:17} {artifact['path']}  {artifact['bytes']} bytes")
    print(f"manifest {result.published[-1]}")
    report_success(STAGE, result.manifest)
    return 0
