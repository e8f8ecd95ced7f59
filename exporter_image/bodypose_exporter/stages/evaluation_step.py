"""The accuracy step of the export and build stages: `evaluation.json` and the
manifests' top-level `evaluation` block.

The export evaluates its FP32 ONNX model once and publishes `evaluation.json`
beside it (artifact kind `evaluation-reference`): the set it used and the
figures in the library's record (`ApFigures.as_dict`, AP as 0..1, read back
by `ApFigures.from_record`). Every build reads that file (`--eval_reference`),
evaluates its own engine on the same set with the same decoding, and gates
the drop (`evaluation.ap_gate`).

Both blocks carry `peakCandidatesCapped`: on how many images the decoder hit
its cap of heatmap candidates per joint (`evaluation.peaks`); above the
reference's count the figures are a broken engine's and the gate refuses it.

The same set, before any inference: `evaluation.json` records the
digests of the set the FP32 model was measured on (`setDigest`,
`evaluation.digest`); a build opens its own set, digests it and refuses a
different one before its engine runs on it, naming both sets and what
differs. An `evaluation.json` written before the digest existed still reads:
the build then logs that it cannot compare the sets up front, evaluates, and
refuses afterwards only what the counts can tell (images, people), as
builds did before; its block says so in `note`.

The manifests' `evaluation` blocks are what the operator copies into the
status, so their figures are in AP points (AP x 100), the unit of `apDrop`,
`maxApDrop` and of every table a user reads; a figure pycocotools could not
measure (no medium people, say) stays -1.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bodypose_exporter.errors import UserError
from bodypose_exporter.evaluation.ap_figures import ApFigures
from bodypose_exporter.evaluation.ap_gate import ApDropVerdict
from bodypose_exporter.evaluation.artifact_ap import EvaluationRequest, engine_ap_gate
from bodypose_exporter.evaluation.dataset import EvaluationSet
from bodypose_exporter.evaluation.digest import SetDigest, set_digest
from bodypose_exporter.evaluation.sources import open_set

log = logging.getLogger(__name__)

SCHEMA = "bodypose.dev/evaluation-reference/v1"


def points(figures: ApFigures) -> dict[str, float]:
    """AP, AP50, AP75, APm, APl in AP points; -1 where there was nothing to measure."""
    return {k: round(v * 100, 4) if v >= 0 else -1.0 for k, v in figures.by_name().items()}


def _note(figures: ApFigures, *more: str) -> str | None:
    return "; ".join((*figures.notes, *more)) or None


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
    digest: SetDigest,
) -> None:
    """`evaluation.json`: what a build needs to judge its engine against this model."""
    record = {
        "schema": SCHEMA,
        "onnx": onnx_location,
        "inputHW": list(input_hw),
        "annotations": request.annotations,
        "images": request.images,
        "maxImages": request.max_images,
        "setDigest": digest.as_dict(),  # the set itself: a build compares its own first
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
    #: The set's digests; None in an evaluation.json written before they were recorded.
    digest: SetDigest | None = None

    def described(self) -> str:
        return _described(
            self.annotations, self.images, self.max_images,
            self.figures.images, self.figures.annotated_people, self.digest,
        )  # fmt: skip

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
        recorded = record.get("setDigest")
        return RecordedReference(
            figures=ApFigures.from_record(record["figures"]),
            annotations=str(record["annotations"]),
            images=str(record["images"]),
            max_images=record.get("maxImages"),
            input_hw=(height, width),
            source=source,
            digest=None if recorded is None else SetDigest.from_record(recorded),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UserError(
            f"--eval_reference {source} is not the evaluation.json an export writes "
            f"({exc}); give the one published beside the export's .onnx"
        ) from exc


def _described(
    annotations: str,
    images: str,
    max_images: int | None,
    image_count: int,
    people: int,
    digest: SetDigest | None,
) -> str:
    limit = f", maxImages {max_images}" if max_images is not None else ""
    digests = f"; digests {digest.short()}" if digest is not None else ""
    return (
        f"annotations {annotations}, images {images}{limit} ({image_count} images, "
        f"{people} people{digests})"
    )


class EvaluationSetMismatchError(UserError):
    """The build's evaluation set is not the one its reference was measured on."""

    reason = "EvaluationSetMismatch"


def check_same_set(
    evaluation_set: EvaluationSet, reference: RecordedReference, request: EvaluationRequest
) -> SetDigest:
    """The build's set against the reference's, by digest, before any inference on it.

    Refuses a different set naming both; returns the build's digest. A
    reference without a digest cannot be compared here: that is logged, and
    `_same_counts` compares what it can after the evaluation.
    """
    digest = set_digest(evaluation_set)
    if reference.digest is None:
        log.warning("%s", NO_DIGEST.format(source=reference.source))
        return digest
    differ = digest.differences(reference.digest)
    if differ:
        ours = _described(
            request.annotations, request.images, request.max_images,
            evaluation_set.image_count, evaluation_set.people, digest,
        )  # fmt: skip
        raise EvaluationSetMismatchError(
            f"the engine's evaluation set is not the one the reference {reference.source} was "
            f"measured on (their {' and '.join(differ)} differ), so the AP drop would mean "
            f"nothing: this build's set is {ours}; the reference's is {reference.described()}. "
            "Give the export's --eval_annotations, --eval_images and --eval_max_images (or "
            "none of them: the reference's are used)"
        )
    return digest


#: Logged, and noted in the build's block, when evaluation.json has no `setDigest`.
NO_DIGEST = (
    "the evaluation reference {source} records no digest of its set (written before "
    "evaluation.json had one), so the sets are compared by image and people counts only, "
    "after the evaluation; export again to have them compared by content first"
)


def _same_counts(
    engine: ApFigures, reference: RecordedReference, request: EvaluationRequest
) -> None:
    """For a reference without digests: refuse at least a set whose counts differ."""
    ours = (engine.images, engine.annotated_people)
    theirs = (reference.figures.images, reference.figures.annotated_people)
    if ours != theirs:
        raise EvaluationSetMismatchError(
            f"the engine was evaluated on {ours[0]} images ({ours[1]} people) of "
            f"{request.annotations}, but the reference {reference.source} on {theirs[0]} images "
            f"({theirs[1]} people) of {reference.annotations}: not the same set, so the AP drop "
            "would mean nothing; give the export's --eval_annotations, --eval_images and "
            "--eval_max_images (or none of them: the reference's are used)"
        )


@dataclass(frozen=True)
class CheckedSet:
    """The build's evaluation set, opened and found to be the reference's."""

    request: EvaluationRequest
    evaluation_set: EvaluationSet
    digest: SetDigest


def open_checked_set(
    request: EvaluationRequest, reference: RecordedReference, work: Path
) -> CheckedSet:
    """Open the build's set (downloads under `work`) and refuse one that is not the
    reference's, before any engine is built or run on it."""
    opened = open_set(request.annotations, request.images, work, request.max_images)
    return CheckedSet(request, opened, check_same_set(opened, reference, request))


@dataclass(frozen=True)
class BuildEvaluation:
    """What a build's AP gate reads: the export's evaluation.json and the build's set."""

    recorded: RecordedReference
    checked: CheckedSet


def open_for_build(
    path: Path,
    source: str,
    annotations: str | None,
    images: str | None,
    max_images: int | None,
    max_ap_drop: float | None,
    work: Path,
) -> BuildEvaluation:
    """The export's evaluation.json at `path` (fetched from `source`), and the build's set
    (the one given, else the reference's) opened under `work` and checked to be its."""
    recorded = read_reference(path, source)
    request = recorded.request(annotations, images, max_images, max_ap_drop)
    return BuildEvaluation(recorded, open_checked_set(request, recorded, work))


def gate_engine(
    checked: CheckedSet,
    reference: RecordedReference,
    backend: str,
    engine_path: Path,
    engine_location: str,
    precision: str,
    input_hw: tuple[int, int],
) -> tuple[dict[str, Any], ApDropVerdict]:
    """The engine's AP on the set, its verdict (not enforced) and the build manifest's block."""
    request = checked.request
    if input_hw != reference.input_hw:
        raise UserError(
            f"--eval_reference {reference.source} was measured at "
            f"{reference.input_hw[0]}x{reference.input_hw[1]}, this engine's input is "
            f"{input_hw[0]}x{input_hw[1]}: give the evaluation.json of the export this "
            "model came from"
        )
    height, width = input_hw
    figures, verdict = engine_ap_gate(
        request, backend, engine_path, reference.figures, precision, height, width,
        checked.evaluation_set,
    )  # fmt: skip
    unchecked = reference.digest is None
    if unchecked:
        _same_counts(figures, reference, request)
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
        "setDigest": checked.digest.as_dict(),
        "note": _note(figures, *([NO_DIGEST.format(source=reference.source)] if unchecked else [])),
        "message": verdict.message,
    }
    return block, verdict
