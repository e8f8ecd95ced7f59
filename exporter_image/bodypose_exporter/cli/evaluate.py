"""`bpnet evaluate` (`python -m bodypose_exporter.evaluation`): OKS keypoint AP, FP32 and engine.

The flags are those of a resource's `spec.evaluation` (`--annotations`,
`--images`, `--max_images`, `--max_ap_drop`), so what a build Job would
decide can be tried by hand first. It prints one table: AP, AP50, AP75, APm
and APl (AP points, i.e. x 100) of the FP32 ONNX model and of the engine,
and the drop; `--output` writes the figures as JSON. The work is
`evaluation` (`sources.open_set`: the set checked and fetched;
`artifact_ap.evaluate_artifact`: TAO's strict-mode input, bottom-up decoding,
pycocotools; `ap_gate.check_ap_drop`: the limit per precision). Exit codes: 0
done, 2 bad input, 3 the engine's AP fell more than `--max_ap_drop` below
the FP32 model's.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from bodypose_exporter.cli.paths import PathKind, mark
from bodypose_exporter.engines.base import PRECISIONS
from bodypose_exporter.engines.registry import BACKENDS, ONNX_REFERENCE
from bodypose_exporter.errors import UserError
from bodypose_exporter.evaluation.ap_figures import ApFigures
from bodypose_exporter.evaluation.ap_gate import (
    DEFAULT_MAX_AP_DROP,
    check_ap_drop,
    enforce_ap_drop,
    max_ap_drop_for,
)
from bodypose_exporter.evaluation.artifact_ap import evaluate_artifact
from bodypose_exporter.evaluation.inference import capped_note
from bodypose_exporter.evaluation.sources import open_set
from bodypose_exporter.verification.reference import input_hw

HELP = "COCO OKS keypoint AP of the FP32 model and of a built engine, and the gate on the drop"
STAGE = None

log = logging.getLogger(__name__)

_LIMITS = ", ".join(f"{p} {v:g}" for p, v in DEFAULT_MAX_AP_DROP.items())
EPILOG = f"""\
examples:
  bpnet evaluate --annotations person_keypoints_val.json --images val2017/ \\
      --onnx bpnet_model.onnx --engine bpnet_model.320.448.int8.onnx \\
      --engine_backend onnxruntime --max_images 500
  bpnet evaluate --annotations s3://data/coco/person_keypoints_val2017.json \\
      --images s3://data/coco/val2017/ --onnx bpnet_model.onnx
      (the FP32 model alone: its AP, what the export stage records)

The images are preprocessed as TAO evaluates exported models (strict mode:
grey padding to the network's aspect ratio), decoded bottom-up as TAO does
and scored with pycocotools. --max_ap_drop is in AP points (AP x 100), by
default {_LIMITS} (TAO: INT8 within 2-3% of the .tlt).
S3 locations are read with the standard AWS_* environment (AWS_ENDPOINT_URL
for MinIO).
"""


def configure(p: argparse.ArgumentParser) -> None:
    p.description = (
        "COCO OKS keypoint AP of the exported FP32 model and of a built engine on your own "
        "annotated images, with TAO's strict-mode input and bottom-up decoding; fails (exit 3) "
        "when the engine's AP drop exceeds --max_ap_drop."
    )
    p.epilog = EPILOG
    annotations = p.add_argument(
        "--annotations", required=True,
        help="COCO person-keypoints JSON (person_keypoints_*.json): a path or s3:// URI",
    )  # fmt: skip
    mark(annotations, PathKind.READ_FILE)
    images = p.add_argument(
        "--images", required=True,
        help="the directory (or s3:// prefix) holding each image's file_name",
    )  # fmt: skip
    mark(images, PathKind.READ_DIR)
    onnx = p.add_argument("--onnx", required=True, type=Path, help="the exported FP32 ONNX model")
    mark(onnx, PathKind.READ_FILE)
    engine = p.add_argument("--engine", type=Path, default=None, help="a built engine to compare")
    mark(engine, PathKind.READ_FILE)
    p.add_argument(
        "--engine_backend", default=ONNX_REFERENCE, choices=BACKENDS,
        help="what loads --engine (default: onnxruntime; tensorrt where TensorRT and a GPU "
        "are); the FP32 model always runs in ONNX Runtime",
    )  # fmt: skip
    p.add_argument(
        "--data_type", default=None, choices=list(PRECISIONS),
        help="the engine's precision, which sets the default --max_ap_drop (default: read "
        "from the engine's name, bpnet_model.H.W.<precision>...)",
    )  # fmt: skip
    p.add_argument(
        "--max_images", type=int, default=None,
        help="evaluate only the first N images by id (default: all); more than the set holds "
        "uses them all and says so",
    )  # fmt: skip
    p.add_argument(
        "--max_ap_drop", type=float, default=None,
        help="fail (exit 3) when the engine's AP is more than this many AP points (AP x 100) "
        f"below the FP32 model's (default: {_LIMITS})",
    )  # fmt: skip
    output = p.add_argument(
        "--output", type=Path, default=None, help="write the figures as JSON here"
    )
    mark(output, PathKind.WRITE_FILE, example="evaluation.json")


def engine_precision(engine: Path, given: str | None) -> str:
    """--data_type, else the precision named in the engine's file name."""
    if given is not None:
        return given
    named = [part for part in engine.name.split(".") if part in PRECISIONS]
    if len(named) != 1:
        raise UserError(
            f"cannot tell the precision of {engine.name} from its name (expected "
            "bpnet_model.H.W.<fp32|fp16|int8>...): give --data_type, which sets the default "
            "--max_ap_drop"
        )
    return named[0]


def _cell(value: float) -> str:
    return "     -" if value < 0 else f"{value * 100:6.2f}"


def table(rows: list[tuple[str, ApFigures]], drop: dict[str, float] | None) -> str:
    """The figures as the user reads them, in AP points."""
    names = ["AP", "AP50", "AP75", "APm", "APl"]
    width = max(len("drop (AP points)"), *(len(name) for name, _ in rows))
    lines = [f"{'':{width}}  " + " ".join(f"{n:>6}" for n in names) + "  people found"]
    for name, figures in rows:
        cells = " ".join(_cell(v) for v in figures.by_name().values())
        lines.append(f"{name:{width}}  {cells}  {figures.found_people:>12}")
    if drop is not None:
        cells = " ".join(f"{drop[n]:6.2f}" for n in names)
        lines.append(f"{'drop (AP points)':{width}}  {cells}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    precision = engine_precision(args.engine, args.data_type) if args.engine else None
    limit = max_ap_drop_for(precision, args.max_ap_drop) if precision else None
    height, width = input_hw(args.onnx)
    report: dict[str, Any] = {"inputHW": [height, width]}
    with tempfile.TemporaryDirectory(prefix="bpnet-evaluate-") as tmp:
        evaluation_set = open_set(args.annotations, args.images, Path(tmp), args.max_images)
        print(
            f"evaluation set: {evaluation_set.image_count} images of {args.annotations} "
            f"({evaluation_set.people} people annotated), network input {height}x{width}"
        )
        for note in evaluation_set.notes:
            print(f"note: {note}")
        reference = evaluate_artifact(ONNX_REFERENCE, args.onnx, evaluation_set, height, width)
        report["evaluationSet"] = {"annotations": args.annotations, "images": args.images}
        report["fp32"] = reference.as_dict()
        rows = [("fp32", reference)]
        engine = None
        if args.engine is not None:
            engine = evaluate_artifact(
                args.engine_backend, args.engine, evaluation_set, height, width
            )
            rows.append((f"{precision} ({args.engine_backend})", engine))
    for name, figures in rows:
        if figures.peak_candidates_capped:
            print(f"note: {name}: {capped_note(figures.peak_candidates_capped, figures.images)}")
    if engine is None or precision is None:
        print(table(rows, None))
        _write(args.output, report)
        return 0
    verdict = check_ap_drop(reference, engine, precision, limit)
    drops = {
        name: (ref - eng) * 100
        for (name, ref), eng in zip(
            reference.by_name().items(), engine.by_name().values(), strict=True
        )
    }
    report["engine"] = {**engine.as_dict(), "backend": args.engine_backend}
    report["gate"] = verdict.as_dict()
    print(table(rows, drops))
    _write(args.output, report)
    if verdict.passed:
        print(f"passed: {verdict.message}")
    enforce_ap_drop(verdict)
    return 0


def _write(output: Path | None, report: dict[str, Any]) -> None:
    if output is not None:
        output.write_text(json.dumps(report, indent=2) + "\n")
