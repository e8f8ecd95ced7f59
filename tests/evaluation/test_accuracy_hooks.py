"""The functions the export and build stages call, on the ideal model of test_ap_gate.

`evaluate_artifact` (export: the FP32 model's figures, recorded in evaluation.json
by `stages.evaluation_step.write_reference` with the set's digests), `read_reference`
(build: those figures read back), `engine_ap_gate` (build: the engine's figures
and verdict), `gate_engine` (build: the same set, compared by digest before the
engine runs on it; by counts for an evaluation.json without one).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from bodypose_exporter.engines.registry import ONNX_REFERENCE
from bodypose_exporter.errors import UserError
from bodypose_exporter.evaluation import artifact_ap
from bodypose_exporter.evaluation.ap_figures import ApFigures
from bodypose_exporter.evaluation.ap_gate import ApDropError, enforce_ap_drop
from bodypose_exporter.evaluation.artifact_ap import (
    EvaluationRequest,
    engine_ap_gate,
    evaluate_artifact,
)
from bodypose_exporter.evaluation.digest import SetDigest, set_digest
from bodypose_exporter.evaluation.inference import evaluate_set
from bodypose_exporter.evaluation.sources import open_set
from bodypose_exporter.stages.evaluation_step import (
    EvaluationSetMismatchError,
    gate_engine,
    open_checked_set,
    read_reference,
    write_reference,
)
from tests.evaluation.test_ap_gate import DAMAGE, DAMAGED_AP, HARMLESS, H, W, case, engine_of

__all__ = ["case"]  # the module fixture, shared


def reference_figures(request: EvaluationRequest, case: Path, work: Path) -> ApFigures:
    """The export's: the FP32 model on the request's set."""
    evaluation_set = open_set(request.annotations, request.images, work, request.max_images)
    return evaluate_artifact(ONNX_REFERENCE, case / "ref.onnx", evaluation_set, H, W)


def digest_of(request: EvaluationRequest, work: Path) -> SetDigest:
    """The export's record of the set itself."""
    return set_digest(open_set(request.annotations, request.images, work, request.max_images))


def export_reference(request: EvaluationRequest, case: Path, work: Path) -> Path:
    """evaluation.json as the export writes it: the FP32 figures and the set's digests."""
    written = work / "evaluation.json"
    figures = reference_figures(request, case, work)
    write_reference(written, request, figures, (H, W), "-", digest_of(request, work))
    return written


def test_the_reference_is_recorded_and_read_back(case: Path, tmp_path: Path) -> None:
    request = EvaluationRequest(str(case / "ann.json"), str(case / "images"), max_images=3)
    figures = reference_figures(request, case, tmp_path)
    assert (figures.ap, figures.images, figures.requested_images) == (1.0, 1, 3)
    written = tmp_path / "evaluation.json"
    digest = digest_of(request, tmp_path)
    write_reference(written, request, figures, (H, W), "s3://b/bpnet_model.onnx", digest)
    manifest = json.loads(written.read_text())
    assert manifest["figures"]["notes"] == [
        f"maxImages 3 is more than the 1 images in {case / 'ann.json'}: evaluated all 1"
    ]
    assert manifest["setDigest"] == digest.as_dict()
    assert all(len(v) == 64 for v in manifest["setDigest"].values())
    recorded = read_reference(written, "s3://b/evaluation.json")
    back = recorded.figures
    assert back.by_name() == figures.by_name() and back.notes == figures.notes
    assert recorded.digest == digest


def test_an_engine_is_judged_against_the_recorded_reference(case: Path, tmp_path: Path) -> None:
    request = EvaluationRequest(str(case / "ann.json"), str(case / "images"), max_ap_drop=2.0)
    written = export_reference(request, case, tmp_path)
    reference = read_reference(written, str(written)).figures
    good, verdict = engine_ap_gate(
        request, "onnxruntime", engine_of(case, *HARMLESS), reference, "fp32", H, W
    )
    assert (good.ap, verdict.passed, verdict.limit) == (1.0, True, 2.0)
    bad, verdict = engine_ap_gate(
        request, "onnxruntime", engine_of(case, *DAMAGE), reference, "int8", H, W
    )
    assert bad.ap == pytest.approx(DAMAGED_AP, abs=1e-4)
    assert verdict.as_dict()["passed"] is False
    with pytest.raises(ApDropError, match=r"^int8 engine AP 40\.10 vs FP32 AP 100\.00: a drop "):
        enforce_ap_drop(verdict)


def test_a_negative_limit_is_refused_before_any_work(case: Path) -> None:
    request = EvaluationRequest("s3://nowhere/ann.json", "s3://nowhere/", max_ap_drop=-1.0)
    with pytest.raises(UserError, match="--max_ap_drop must not be negative"):
        engine_ap_gate(request, "onnxruntime", case / "none.onnx", ApFigures(1, 1, 1, 1, 1, 1),
                       "int8", H, W)  # fmt: skip


def test_a_loaded_runner_on_a_set_named_by_paths(case: Path, tmp_path: Path) -> None:
    from tests.evaluation.test_evaluation_inputs import IdealRunner

    evaluation_set = open_set(str(case / "ann.json"), str(case / "images"), tmp_path)
    figures = evaluate_set(IdealRunner(), evaluation_set, H, W)
    assert figures.by_name() == {"AP": 1.0, "AP50": 1.0, "AP75": 1.0, "APm": -1.0, "APl": 1.0}
    assert (figures.images, figures.annotated_people, figures.found_people) == (1, 2, 2)


# The same set, compared before any inference.


@pytest.fixture
def no_inference(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fails the test if the engine is run on the set (the refusal must come first)."""

    def ran(*args: object, **kwargs: object) -> ApFigures:
        raise AssertionError("the engine was evaluated before the set was compared")

    monkeypatch.setattr(artifact_ap, "evaluate_artifact", ran)


def _gate(request: EvaluationRequest, written: Path, engine: Path) -> dict[str, Any]:
    """What a build does: open and check the set, then gate the engine on it."""
    reference = read_reference(written, str(written))
    work = written.parent / f"set-{len(list(written.parent.iterdir()))}"
    checked = open_checked_set(request, reference, work)
    block, _ = gate_engine(checked, reference, ONNX_REFERENCE, engine, "-", "fp32", (H, W))
    return dict(block)


def _refusal(written: Path, ours: tuple[Path, Path], theirs: tuple[Path, Path],
             differ: str, work: Path) -> str:  # fmt: skip
    """The sentence a user reads, both sets named with their counts and digests."""
    mine = set_digest(open_set(str(ours[0]), str(ours[1]), work / "ours"))
    recorded = set_digest(open_set(str(theirs[0]), str(theirs[1]), work / "theirs"))
    return (
        f"the engine's evaluation set is not the one the reference {written} was measured on "
        f"(their {differ} differ), so the AP drop would mean nothing: this build's set is "
        f"annotations {ours[0]}, images {ours[1]} (1 images, 2 people; digests annotations "
        f"{mine.annotations[:12]}, images {mine.images[:12]}); the reference's is annotations "
        f"{theirs[0]}, images {theirs[1]} (1 images, 2 people; digests annotations "
        f"{recorded.annotations[:12]}, images {recorded.images[:12]}). Give the export's "
        "--eval_annotations, --eval_images and --eval_max_images (or none of them: the "
        "reference's are used)"
    )


def test_other_annotations_with_the_same_counts_are_refused_before_any_inference(
    case: Path, tmp_path: Path, no_inference: None
) -> None:
    written = export_reference(EvaluationRequest(str(case / "ann.json"), str(case / "images")),
                               case, tmp_path)  # fmt: skip
    moved = json.loads((case / "ann.json").read_text())
    moved["annotations"][1]["keypoints"][0] += 3  # one joint 3 px off: same images, same people
    other = tmp_path / "other.json"
    other.write_text(json.dumps(moved))
    expected = _refusal(written, (other, case / "images"), (case / "ann.json", case / "images"),
                        "annotations", tmp_path)  # fmt: skip
    request = EvaluationRequest(str(other), str(case / "images"))
    with pytest.raises(EvaluationSetMismatchError) as refused:
        _gate(request, written, case / "never-loaded.engine")
    assert str(refused.value) == expected
    assert refused.value.reason == "EvaluationSetMismatch"


def test_other_pictures_under_the_same_names_are_refused(
    case: Path, tmp_path: Path, no_inference: None
) -> None:
    written = export_reference(EvaluationRequest(str(case / "ann.json"), str(case / "images")),
                               case, tmp_path)  # fmt: skip
    other = tmp_path / "images"
    other.mkdir()
    cv2.imwrite(str(other / "synthetic.png"), np.full((H, W, 3), 90, np.uint8))
    expected = _refusal(written, (case / "ann.json", other), (case / "ann.json", case / "images"),
                        "images", tmp_path)  # fmt: skip
    with pytest.raises(EvaluationSetMismatchError) as refused:
        _gate(EvaluationRequest(str(case / "ann.json"), str(other)), written, case / "none")
    assert str(refused.value) == expected


def test_the_same_set_elsewhere_passes_and_its_digest_is_recorded(
    case: Path, tmp_path: Path
) -> None:
    """A copy of the set (another directory, the JSON re-serialised) is the same set."""
    request = EvaluationRequest(str(case / "ann.json"), str(case / "images"))
    written = export_reference(request, case, tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(case / "images", copy / "images")
    (copy / "ann.json").write_text(json.dumps(json.loads((case / "ann.json").read_text()),
                                              indent=3, sort_keys=True))  # fmt: skip
    block = _gate(EvaluationRequest(str(copy / "ann.json"), str(copy / "images")), written,
                  engine_of(case, *HARMLESS))  # fmt: skip
    assert block["passed"] is True and block["note"] is None
    assert block["setDigest"] == json.loads(written.read_text())["setDigest"]


def test_an_evaluation_json_without_a_digest_is_compared_by_counts(
    case: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """One written before the digest existed: read, gated, and the user told how it was."""
    request = EvaluationRequest(str(case / "ann.json"), str(case / "images"))
    written = export_reference(request, case, tmp_path)
    record = json.loads(written.read_text())
    del record["setDigest"]
    written.write_text(json.dumps(record))
    assert read_reference(written, str(written)).digest is None
    note = (
        f"the evaluation reference {written} records no digest of its set (written before "
        "evaluation.json had one), so the sets are compared by image and people counts only, "
        "after the evaluation; export again to have them compared by content first"
    )
    engine = engine_of(case, *HARMLESS)
    with caplog.at_level(logging.WARNING):
        block = _gate(request, written, engine)
    assert (block["passed"], block["note"]) == (True, note)
    assert note in caplog.messages
    one = json.loads((case / "ann.json").read_text())
    one["annotations"] = one["annotations"][:1]  # a count that differs is still refused
    fewer = tmp_path / "fewer.json"
    fewer.write_text(json.dumps(one))
    with pytest.raises(EvaluationSetMismatchError, match=(
        rf"^the engine was evaluated on 1 images \(1 people\) of {fewer}, but the reference "
        rf"{written} on 1 images \(2 people\) of {case / 'ann.json'}: not the same set"
    )):  # fmt: skip
        _gate(EvaluationRequest(str(fewer), str(case / "images")), written, engine)


def test_a_malformed_digest_is_not_an_evaluation_json(case: Path, tmp_path: Path) -> None:
    written = export_reference(EvaluationRequest(str(case / "ann.json"), str(case / "images")),
                               case, tmp_path)  # fmt: skip
    record = json.loads(written.read_text())
    record["setDigest"]["images"] = "not-hex"
    written.write_text(json.dumps(record))
    with pytest.raises(UserError, match=(
        rf"^--eval_reference {written} is not the evaluation.json an export writes \(setDigest "
        r"value 'not-hex' is not a SHA-256 hex digest\)"
    )):  # fmt: skip
        read_reference(written, str(written))
