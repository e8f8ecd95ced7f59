"""The accuracy step of the export and build stages (issue 17): `evaluation.json` and the
manifests' top-level `evaluation` block.

The export evaluates its FP32 ONNX model once and publishes `evaluation.json`
beside it (artifact kind `evaluation-reference`): the set it used and the
figures in the library's record (`ApFigures.as_dict`, AP as 0..1, read back
by `ApFigures.from_record`). Every build reads that file (`--eval_reference`),
evaluates its own engine on the same set with the same decoding, and gates
the drop (`evaluation.gate`).

Both blocks carry `peakCandidatesCapped`: on how many images the decoder hit
its cap of heatmap candidates per joint (`evaluation.peaks`); above the
reference's count the figures are a broken engine's and the gate refuses it.

The manifests' `evaluation` blocks are what the operator copies into the
status, so their figures are in AP points (AP x 100), the unit of `apDrop`,
`maxApDrop` and of every table a user reads; a figure pycocotools could not
measure (no medium people, say) stays -1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bodypose_exporter.errors import UserError
from bodypose_exporter.evaluation.accuracy import EvaluationRequest, engine_ap_gate
from bodypose_exporter.evaluation.figures import ApFigures
from bodypose_exporter.evaluation.gate import ApDropVerdict

REFERENCE_NAME = "evaluation.json"
REFERENCE_KIND = "evaluation-reference"
SCHEMA = "bodypose.dev/evaluation-reference/v1"


def points(figures: ApFigures) -> dict[str, float]:
    """AP, AP50, AP75, APm, APl in AP points; -1 where there was nothing to measure."""
    return {k: round(v * 100, 4) if v >= 0 else -1.0 for k, v in figures.by_name().items()}


def _note(figures: ApFigures) -> str | None:
    return "; ".join(figures.notes) or None


def export_block(request: EvaluationRequest, figures: ApFigures) -> dict[str, Any]:
    """The export manifest's `evaluation`: the FP32 model's figures and the set they are on."""
    return {
        "images": figures.images,
        "people": figures.annotated_people,
        "figures": points(figures),
        "peakCandidatesCapped": figures.peak_candidates_capped,
        "annotations": request.annotations,
        "imagesUri": request.images,
        "note": _note(figures),
    }


def write_reference(
    path: Path,
    request: EvaluationRequest,
    figures: ApFigures,
    input_hw: tuple[int, int],
    onnx_location: str,
) -> None:
    """`evaluation.json`: what a build needs to judge its engine against this model."""
    record = {
        "schema": SCHEMA,
        "onnx": onnx_location,
        "inputHW": list(input_hw),
        "annotations": request.annotations,
        "images": request.images,
        "maxImages": request.max_images,
        "figures": figures.as_dict(),  # AP as 0..1: ApFigures.from_record reads it back
        "summary": export_block(request, figures),
    }
    path.write_text(json.dumps(record, indent=2) + "\n")


@dataclass(frozen=True)
class RecordedReference:
    """An export's `evaluation.json`, read back by a build."""

    figures: ApFigures
    annotations: str
    images: str
    max_images: int | None
    input_hw: tuple[int, int]
    source: str  # the --eval_reference the user gave

    def request(
        self,
        annotations: str | None,
        images: str | None,
        max_images: int | None,
        max_ap_drop: float | None,
    ) -> EvaluationRequest:
        """The build's set: the one given, else the one the reference was measured on."""
        return EvaluationRequest(
            annotations=annotations or self.annotations,
            images=images or self.images,
            max_images=max_images if max_images is not None else self.max_images,
            max_ap_drop=max_ap_drop,
        )


def read_reference(path: Path, source: str) -> RecordedReference:
    """`evaluation.json` at `path` (fetched from `source`); refused, naming `source`, if not one."""
    try:
        record = json.loads(path.read_text())
        if record.get("schema") != SCHEMA:
            raise ValueError(f"schema {record.get('schema')!r}, expected {SCHEMA!r}")
        height, width = (int(v) for v in record["inputHW"])
        return RecordedReference(
            figures=ApFigures.from_record(record["figures"]),
            annotations=str(record["annotations"]),
            images=str(record["images"]),
            max_images=record.get("maxImages"),
            input_hw=(height, width),
            source=source,
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UserError(
            f"--eval_reference {source} is not the evaluation.json an export writes "
            f"({exc}); give the one published beside the export's .onnx"
        ) from exc


def _same_set(engine: ApFigures, reference: RecordedReference, request: EvaluationRequest) -> None:
    """AP drops compare only on the same images: refuse a build that evaluated other ones."""
    ours = (engine.images, engine.annotated_people)
    theirs = (reference.figures.images, reference.figures.annotated_people)
    if ours != theirs:
        raise UserError(
            f"the engine was evaluated on {ours[0]} images ({ours[1]} people) of "
            f"{request.annotations}, but the reference {reference.source} on {theirs[0]} images "
            f"({theirs[1]} people) of {reference.annotations}: not the same set, so the AP drop "
            "would mean nothing; give the export's --eval_annotations, --eval_images and "
            "--eval_max_images (or none of them: the reference's are used)"
        )


def gate_engine(
    request: EvaluationRequest,
    reference: RecordedReference,
    backend: str,
    engine_path: Path,
    engine_location: str,
    precision: str,
    input_hw: tuple[int, int],
) -> tuple[dict[str, Any], ApDropVerdict]:
    """The engine's AP on the set, its verdict (not enforced) and the build manifest's block."""
    if input_hw != reference.input_hw:
        raise UserError(
            f"--eval_reference {reference.source} was measured at "
            f"{reference.input_hw[0]}x{reference.input_hw[1]}, this engine's input is "
            f"{input_hw[0]}x{input_hw[1]}: give the evaluation.json of the export this "
            "model came from"
        )
    height, width = input_hw
    figures, verdict = engine_ap_gate(
        request, backend, engine_path, reference.figures, precision, height, width
    )
    _same_set(figures, reference, request)
    block = {
        "images": figures.images,
        "figures": points(figures),
        "reference": points(reference.figures),
        "apDrop": verdict.drop,
        "maxApDrop": verdict.limit,
        "passed": verdict.passed,
        "precision": precision,
        "people": figures.annotated_people,
        "foundPeople": figures.found_people,
        "peakCandidatesCapped": figures.peak_candidates_capped,
        "evaluatedEngine": engine_location,
        "referenceUri": reference.source,
        "annotations": request.annotations,
        "imagesUri": request.images,
        "note": _note(figures),
        "message": verdict.message,
    }
    return block, verdict
