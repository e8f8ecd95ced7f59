"""`bpnet evaluate` (`python -m bodypose_exporter.evaluation`): OKS keypoint AP, FP32 and engine.

Prints TAO's ten COCO figures for each (`evaluation.inference`: TAO's
strict-mode input, bottom-up decoding, pycocotools), and the engine's AP
drop; `--output` writes them as JSON. Exit codes: 0 done, 2 bad input, 3 the
engine's AP is more than `--max_ap_drop` below the FP32 model's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bodypose_exporter.engines.registry import BACKENDS, backend_by_name
from bodypose_exporter.evaluation.inference import Evaluation, evaluate, load_annotations
from bodypose_exporter.verification.reference import input_hw

HELP = "COCO OKS keypoint AP of the FP32 model and of a built engine"
STAGE = None

EPILOG = """\
example:
  bpnet evaluate --annotations person_keypoints_val.json --images val2017/ \\
      --onnx bpnet_model.onnx --engine bpnet_model.320.448.int8.engine \\
      --engine_backend onnxruntime --max_ap_drop 0.02
"""


def configure(p: argparse.ArgumentParser) -> None:
    p.description = (
        "COCO OKS keypoint AP of the exported FP32 model and of a built engine, with TAO's "
        "bottom-up decoding."
    )
    p.epilog = EPILOG
    p.add_argument("--annotations", required=True, type=Path, help="COCO keypoint JSON")
    p.add_argument("--images", required=True, type=Path, help="directory of its images")
    p.add_argument("--onnx", required=True, type=Path, help="the exported FP32 ONNX model")
    p.add_argument("--engine", type=Path, default=None, help="a built engine to compare")
    p.add_argument("--engine_backend", default="onnxruntime", choices=BACKENDS)
    p.add_argument(
        "--max_ap_drop", type=float, default=None, help="fail (exit 3) past this AP drop"
    )
    p.add_argument("--output", type=Path, default=None, help="write the figures as JSON here")


def _line(name: str, result: Evaluation) -> str:
    shown = ", ".join(f"{k} {v:.4f}" for k, v in list(result.figures.items())[:3])
    return f"{name}: {shown} ({result.people} people in {result.images} images)"


def run(args: argparse.Namespace) -> int:
    dataset = load_annotations(args.annotations)
    height, width = input_hw(args.onnx)
    fp32_runner = backend_by_name("onnxruntime").load(args.onnx)
    report: dict[str, Any] = {"inputHW": [height, width]}
    reference = evaluate(fp32_runner, dataset, args.images, height, width)
    report["fp32"] = reference.figures
    print(_line("fp32", reference))
    drop = 0.0
    if args.engine is not None:
        runner = backend_by_name(args.engine_backend).load(args.engine)
        try:
            engine = evaluate(runner, dataset, args.images, height, width)
        finally:
            runner.close()
        drop = reference.figures["AP_0.50:0.95_all"] - engine.figures["AP_0.50:0.95_all"]
        report["engine"] = {**engine.figures, "apDrop": drop}
        print(_line(f"engine ({args.engine_backend})", engine))
        print(f"AP drop {drop:+.4f}")
    if args.output is not None:
        args.output.write_text(json.dumps(report, indent=2) + "\n")
    if args.engine is not None and args.max_ap_drop is not None and drop > args.max_ap_drop:
        print(f"error: AP drop {drop:.4f} > --max_ap_drop {args.max_ap_drop}", file=sys.stderr)
        return 3
    return 0
