"""The functions the export and build stages call, on the ideal model of test_ap_gate.

`evaluate_artifact` (export: the FP32 model's figures, recorded in evaluation.json
by `stages.accuracy.write_reference`), `read_reference` (build: those figures
read back), `engine_ap_gate` (build: the engine's figures and verdict).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bodypose_exporter.engines.registry import ONNX_REFERENCE
from bodypose_exporter.errors import UserError
from bodypose_exporter.evaluation.accuracy import (
    EvaluationRequest,
    engine_ap_gate,
    evaluate_artifact,
)
from bodypose_exporter.evaluation.figures import ApFigures
from bodypose_exporter.evaluation.gate import ApDropError, enforce_ap_drop
from bodypose_exporter.evaluation.inference import evaluate_set
from bodypose_exporter.evaluation.sources import open_set
from bodypose_exporter.stages.accuracy import read_reference, write_reference
from tests.evaluation.test_ap_gate import DAMAGE, DAMAGED_AP, HARMLESS, H, W, case, engine_of

__all__ = ["case"]  # the module fixture, shared


def reference_figures(request: EvaluationRequest, case: Path, work: Path) -> ApFigures:
    """The export's: the FP32 model on the request's set."""
    evaluation_set = open_set(request.annotations, request.images, work, request.max_images)
    return evaluate_artifact(ONNX_REFERENCE, case / "ref.onnx", evaluation_set, H, W)


def test_the_reference_is_recorded_and_read_back(case: Path, tmp_path: Path) -> None:
    request = EvaluationRequest(str(case / "ann.json"), str(case / "images"), max_images=3)
    figures = reference_figures(request, case, tmp_path)
    assert (figures.ap, figures.images, figures.requested_images) == (1.0, 1, 3)
    written = tmp_path / "evaluation.json"
    write_reference(written, request, figures, (H, W), "s3://b/bpnet_model.onnx")
    manifest = json.loads(written.read_text())
    assert manifest["figures"]["notes"] == [
        f"maxImages 3 is more than the 1 images in {case / 'ann.json'}: evaluated all 1"
    ]
    back = read_reference(written, "s3://b/evaluation.json").figures
    assert back.by_name() == figures.by_name() and back.notes == figures.notes


def test_an_engine_is_judged_against_the_recorded_reference(case: Path, tmp_path: Path) -> None:
    request = EvaluationRequest(str(case / "ann.json"), str(case / "images"), max_ap_drop=2.0)
    written = tmp_path / "evaluation.json"
    write_reference(written, request, reference_figures(request, case, tmp_path), (H, W), "-")
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
