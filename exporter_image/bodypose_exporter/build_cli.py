"""`bpnet-build`: build and verify one engine from the export stage's artifacts.

The operator runs it in each target pool's build Job; people can run it too.
Flag names follow `bpnet-export` (and so TAO) where they mean the same thing.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from bodypose_exporter.engines.registry import BACKENDS
from bodypose_exporter.errors import UserError
from bodypose_exporter.result import report_failure, report_success

log = logging.getLogger("bpnet-build")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bpnet-build",
        description="Build a BodyPoseNet engine for this machine's hardware and verify it "
        "against the FP32 reference the export kept.",
        epilog="example: bpnet-build --onnx s3://b/x/bpnet_model.onnx --reference "
        "s3://b/x/reference.npz --data_type fp16 --engine_backend tensorrt "
        "--engine_file s3://b/x/targets/a100/bpnet_model.320.448.fp16.engine",
    )
    p.add_argument("--onnx", required=True, help="the FP32 ONNX model (path or s3://)")
    p.add_argument("--reference", required=True, help="reference.npz from the export")
    p.add_argument("--engine_file", required=True, help="engine to write (path or s3://)")
    p.add_argument("--data_type", default="fp32", choices=["fp32", "fp16", "int8"])
    p.add_argument("--engine_backend", default="tensorrt", choices=BACKENDS)
    p.add_argument("--max_batch_size", type=int, default=1)
    p.add_argument("--max_workspace_size", type=int, default=2 << 30)
    p.add_argument("-s", "--strict_type_constraints", action="store_true")
    p.add_argument("--cal_cache_file", default=None, help="cal.bin (int8, tensorrt)")
    p.add_argument("--qdq_model", default=None, help="QDQ ONNX model (int8, onnxruntime)")
    p.add_argument("--timing_cache", default=None, help="TensorRT timing cache to reuse and update")
    p.add_argument("--max_abs_diff", type=float, default=None, help="override the gate")
    p.add_argument("--min_cosine", type=float, default=None, help="override the gate")
    p.add_argument("--min_peak_agreement", type=float, default=None, help="override the gate")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s [bpnet-build] %(levelname)s %(name)s: %(message)s",
    )
    from bodypose_exporter.stages.build import BuildStageRequest, run_build

    try:
        if args.max_batch_size < 1:
            raise UserError(f"--max_batch_size must be at least 1, got {args.max_batch_size}")
        manifest = run_build(
            BuildStageRequest(
                onnx=args.onnx,
                engine_file=args.engine_file,
                reference=args.reference,
                precision=args.data_type,
                backend=args.engine_backend,
                max_batch_size=args.max_batch_size,
                max_workspace_size=args.max_workspace_size,
                strict_types=args.strict_type_constraints,
                calibration_cache=args.cal_cache_file,
                qdq_model=args.qdq_model,
                timing_cache=args.timing_cache,
                gates=(
                    ("maxAbsDiff", args.max_abs_diff),
                    ("cosine", args.min_cosine),
                    ("peakAgreement", args.min_peak_agreement),
                ),
            )
        )
    except UserError as exc:
        print(f"bpnet-build: error: {exc}", file=sys.stderr)
        report_failure("build", exc.reason, str(exc))
        return exc.exit_code
    engine = manifest["artifacts"][0]
    print(f"engine {engine['path']}  {engine['bytes']} bytes  sha256 {engine['sha256']}")
    figures = manifest["verification"]["figures"]
    print("verification " + ", ".join(f"{k} {v:.4g}" for k, v in figures.items()))
    report_success("build", manifest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
