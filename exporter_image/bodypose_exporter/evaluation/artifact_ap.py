"""What the export and build stages call: the FP32 reference AP once, then each engine's gate.

A resource's `spec.evaluation` (`annotationsUri`, `imagesUri`, `maxImages`,
`maxApDrop`) arrives as an `EvaluationRequest`. The export stage runs
`evaluate_artifact` on the FP32 ONNX model it just wrote and records the
figures in `evaluation.json` (`stages.evaluation_step.write_reference`); every build
stage runs `engine_ap_gate` on its own engine, on its own hardware, with the
same set, decoding and `maxImages`, against the figures the export recorded
(`stages.evaluation_step.read_reference`), records the result in its manifest and
calls `ap_gate.enforce_ap_drop` to refuse the target. Same functions as `bpnet
evaluate`, so a user can reproduce a Job's verdict by hand.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from bodypose_exporter.engines.registry import backend_by_name
from bodypose_exporter.evaluation.ap_figures import ApFigures
from bodypose_exporter.evaluation.ap_gate import ApDropVerdict, check_ap_drop, max_ap_drop_for
from bodypose_exporter.evaluation.dataset import EvaluationSet
from bodypose_exporter.evaluation.inference import evaluate_set
from bodypose_exporter.evaluation.sources import open_set


@dataclass(frozen=True)
class EvaluationRequest:
    """`spec.evaluation` / `bpnet evaluate`'s flags."""

    annotations: str  # annotationsUri / --annotations: a path or s3:// URI
    images: str  # imagesUri / --images: a directory or s3:// prefix
    max_images: int | None = None  # maxImages / --max_images
    max_ap_drop: float | None = None  # maxApDrop / --max_ap_drop, AP points; None: per precision


def evaluate_artifact(
    backend: str, artifact: Path, evaluation_set: EvaluationSet, height: int, width: int
) -> ApFigures:
    """AP of a model or engine loaded by `backend` (`onnxruntime` for the FP32 ONNX model)."""
    runner = backend_by_name(backend).load(artifact)
    try:
        return evaluate_set(runner, evaluation_set, height, width)
    finally:
        runner.close()


def engine_ap_gate(
    request: EvaluationRequest,
    backend: str,
    engine_path: Path,
    reference: ApFigures,
    precision: str,
    height: int,
    width: int,
    evaluation_set: EvaluationSet | None = None,
) -> tuple[ApFigures, ApDropVerdict]:
    """The build stage's: the engine's AP on the same set and its verdict (not yet enforced).

    The limit is checked before any inference, so a negative `maxApDrop`
    costs no download; `evaluation_set`: the set already opened (and checked:
    the build's same-set check, `stages.evaluation_step`), else it is opened here.
    """
    max_ap_drop_for(precision, request.max_ap_drop)
    with tempfile.TemporaryDirectory(prefix="bpnet-evaluation-") as tmp:
        if evaluation_set is None:
            evaluation_set = open_set(
                request.annotations, request.images, Path(tmp), request.max_images
            )
        engine = evaluate_artifact(backend, engine_path, evaluation_set, height, width)
    return engine, check_ap_drop(reference, engine, precision, request.max_ap_drop)
