"""`bpnet-build`: build and verify one engine from the export stage's artifacts.

The operator runs it in each target pool's build Job; people can run it too.
Flag names follow `bpnet-export` (and so TAO) where they mean the same thing.
Exit codes: 0 built and verified, 2 bad input, 3 the engine failed its gate.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from bodypose_exporter.engines.registry import BACKENDS, DEFAULT_BACKEND
from bodypose_exporter.errors import UserError
from bodypose_exporter.result import report_failure, report_success
from bodypose_exporter.verification.gates import GATE_FLAGS, VerificationError

log = logging.getLogger("bpnet-build")


def add_gate_flags(p: argparse.ArgumentParser) -> None:
    """The verification gate overrides, shared with bpnet-export."""
    p.add_argument(
        GATE_FLAGS["maxAbsDiff"], type=float, default=None,
        help="gate: largest |engine - FP32 reference| (default per precision: fp32 0.005, "
        "fp16 0.05, int8 none)",
    )  # fmt: skip
    p.add_argument(
        GATE_FLAGS["cosine"], type=float, default=None,
        help="gate: least cosine similarity of heatmaps and PAFs (fp32 0.9999, fp16 0.999, "
        "int8 0.98)",
    )  # fmt: skip
    p.add_argument(
        GATE_FLAGS["peakAgreement"], type=float, default=None,
        help="gate: least share of the reference's keypoint candidates the engine has within "
        "one heatmap cell (fp32 0.99, fp16 0.95, int8 0.85)",
    )  # fmt: skip


def gate_overrides(args: argparse.Namespace) -> tuple[tuple[str, float | None], ...]:
    return (
        ("maxAbsDiff", args.max_abs_diff),
        ("cosine", args.min_cosine),
        ("peakAgreement", args.min_peak_agreement),
    )


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
    p.add_argument("--reference", default=None, help="reference.npz from the export")
    p.add_argument(
        "--reference_images", default=None,
        help="a local directory of images to verify on instead (FP32 reference computed here)",
    )  # fmt: skip
    p.add_argument("--engine_file", required=True, help="engine to write (path or s3://)")
    p.add_argument("--data_type", default="fp32", choices=["fp32", "fp16", "int8"])
    p.add_argument("--engine_backend", default=DEFAULT_BACKEND, choices=BACKENDS)
    p.add_argument("--max_batch_size", type=int, default=1)
    p.add_argument("--max_workspace_size", type=int, default=2 << 30, help="bytes")
    p.add_argument("-s", "--strict_type_constraints", action="store_true")
    p.add_argument("--cal_cache_file", default=None, help="cal.bin (int8): replayed if it exists")
    p.add_argument(
        "--cal_data_file", default=None,
        help="calibration tensorfile (int8, tensorrt): TensorRT calibrates from it when "
        "--cal_cache_file does not exist yet, and writes that cache",
    )  # fmt: skip
    p.add_argument("--batches", type=int, default=10, help="tensorfile batches to calibrate on")
    p.add_argument("--batch_size", type=int, default=1, help="images per calibration batch")
    p.add_argument("--qdq_model", default=None, help="QDQ ONNX model (int8, onnxruntime)")
    p.add_argument(
        "--timing_cache", default=None,
        help="TensorRT timing cache to reuse and update (default: <engine_file>.timing.cache)",
    )  # fmt: skip
    add_gate_flags(p)
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
        result = run_build(
            BuildStageRequest(
                onnx=args.onnx,
                engine_file=args.engine_file,
                reference=args.reference,
                reference_images=args.reference_images,
                precision=args.data_type,
                backend=args.engine_backend,
                max_batch_size=args.max_batch_size,
                max_workspace_size=args.max_workspace_size,
                strict_types=args.strict_type_constraints,
                calibration_cache=args.cal_cache_file,
                calibration_data=args.cal_data_file,
                calibration_batches=args.batches,
                calibration_batch_size=args.batch_size,
                qdq_model=args.qdq_model,
                timing_cache=args.timing_cache,
                gates=gate_overrides(args),
            )
        )
    except UserError as exc:
        print(f"bpnet-build: error: {exc}", file=sys.stderr)
        if isinstance(exc, VerificationError):
            figures = exc.verdict.figures
            print(
                "verification " + ", ".join(f"{k} {v:.4g}" for k, v in figures.items()),
                file=sys.stderr,
            )
        report_failure("build", exc.reason, str(exc))
        return exc.exit_code
    engine = result.manifest["artifacts"][0]
    print(f"engine {engine['path']}  {engine['bytes']} bytes  sha256 {engine['sha256']}")
    figures = result.verdict.figures
    print("verification " + ", ".join(f"{k} {v:.4g}" for k, v in figures.items()) + "  passed")
    report_success("build", result.manifest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
