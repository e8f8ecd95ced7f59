"""TAO's resolution table from statuses: the fields a build's manifest gives a target, the table
`bodypose-report` prints of them (Markdown, CSV), its plot, and the sweep example's resources.

The end-to-end run over real statuses is tests/e2e/test_resolution_report.py; here the
manifests are the build stage's shape (latency, evaluation) and nothing is measured.
"""

from __future__ import annotations

import csv
import io
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from bodypose_operator.api.v1alpha1 import BodyPoseExportSpec, TargetStatus
from bodypose_operator.controller import metrics
from bodypose_operator.controller.manifests import target_fields
from bodypose_operator.report import NOT_MEASURED, csv_text, markdown, plot, rows_of

ROOT = Path(__file__).resolve().parents[2]


def build_manifest(median: float, ap: float, ap_m: float) -> dict[str, Any]:
    """What a build stage's manifest.json says of a timed, evaluated ONNX Runtime target."""
    return {
        "artifacts": [],
        "latency": {
            "timed": "the engine alone", "clock": "wall clock around run()", "threads": 2,
            "device": "AMD EPYC", "warmup": 2,
            "batch1": {"batch": 1, "medianMs": median, "p90Ms": median * 1.1,
                       "imagesPerSecond": 1000 / median},
            "batchMax": {"batch": 4, "medianMs": median * 3.5, "p90Ms": median * 3.8,
                         "imagesPerSecond": 4000 / (median * 3.5)},
        },
        "evaluation": {"figures": {"AP": ap, "APm": ap_m, "APl": ap + 3}, "apDrop": 0.1,
                       "maxApDrop": 0.5},
    }  # fmt: skip


def resource(
    name: str, height: int, width: int, precision: str, **by_target: Any
) -> dict[str, Any]:
    targets = []
    for target, manifest in by_target.items():
        built = {"verification": {"run": False, "notRunReason": "no GPU"}}
        fields = target_fields({"precision": precision, **(manifest or built)})
        targets.append({"name": target, "phase": "Ready", **fields})
    return {
        "metadata": {"name": name},
        "spec": {"input": {"height": height, "width": width}, "precision": precision},
        "status": {"resolution": f"{height}x{width}", "targets": targets},
    }


@pytest.fixture
def sweep() -> list[dict[str, Any]]:
    return [
        resource("b", 320, 448, "fp32", cpu=build_manifest(40.0, 55.0, 50.0), l4=None),
        resource("a", 224, 320, "fp32", cpu=build_manifest(20.0, 50.0, 41.0), l4=None),
        resource("c", 224, 320, "int8", cpu=build_manifest(12.0, 49.0, 40.0)),
    ]


def test_a_timed_evaluated_target_has_latency_ap_m_and_ap_l_in_its_status() -> None:
    fields = target_fields(build_manifest(20.0, 50.0, 41.0))
    status = TargetStatus.model_validate({"name": "cpu", "phase": "Ready", **fields})
    assert status.latencyMs is not None and status.latencyMs.batch1 is not None
    assert (status.latencyMs.batch1.median, status.latencyMs.batch1.p90) == (20.0, 22.0)
    assert status.latencyMs.batchMax is not None and status.latencyMs.batchMax.batch == 4
    assert (status.apM, status.apL, status.latencyDevice) == (41.0, 53.0, "AMD EPYC")
    assert status.throughput == pytest.approx(4000 / 70.0, rel=1e-3)
    # An engine nobody ran has no latency at all, never a number.
    untimed = target_fields({"latency": {"measured": False, "reason": "no GPU"}})
    assert "latencyMs" not in untimed and "throughput" not in untimed


def test_the_table_lists_every_target_by_resolution_and_precision(
    sweep: list[dict[str, Any]],
) -> None:
    rows = rows_of(sweep)
    assert [(r.resolution, r.precision, r.target) for r in rows] == [
        ("224x320", "fp32", "cpu"), ("224x320", "fp32", "l4"), ("224x320", "int8", "cpu"),
        ("320x448", "fp32", "cpu"), ("320x448", "fp32", "l4"),
    ]  # fmt: skip
    table = markdown(rows).splitlines()
    assert table[0].startswith("| resolution | precision | target | batch-1 ms (median)")
    assert table[2] == (
        "| 224x320 | fp32 | cpu | 20.00 | 22.00 | 70.00 | 4 | 57.1 | 50.00 | 41.00 | 53.00 | 0.10 |"
    )
    assert NOT_MEASURED in table[3]  # the l4 engine was built and not run
    parsed = list(csv.reader(io.StringIO(csv_text(rows))))
    assert parsed[0][0] == "resolution" and len(parsed) == 6 and parsed[5][3] == NOT_MEASURED


def test_rows_say_the_precision_and_resolution_the_status_says_not_the_spec() -> None:
    """An fp16 resource's ONNX Runtime target runs the FP32 graph (its manifest says so, the
    status copies it); a spec edited to another resolution has not been built yet."""
    ort_fp16 = {
        **build_manifest(20.0, 50.0, 41.0),
        "precision": "fp32",
        "requestedPrecision": "fp16",
        "precisionReason": "no FP16 convolutions",
    }
    obj = resource("a", 224, 320, "fp16", cpu=ort_fp16, l4=build_manifest(5.0, 50.0, 41.0))
    status = TargetStatus.model_validate(obj["status"]["targets"][0])
    assert (status.precision, status.precisionReason) == ("fp32", "no FP16 convolutions")
    obj["spec"]["input"] = {"height": 320, "width": 448}  # edited; not reconciled yet
    rows = rows_of([obj])
    assert [(r.resolution, r.precision, r.target) for r in rows] == [
        ("224x320", "fp32", "cpu"), ("224x320", "fp16", "l4"),
    ]  # fmt: skip
    assert markdown(rows).splitlines()[2].startswith("| 224x320 | fp32 | cpu | 20.00 |")
    # A manifest written before `precision` followed the artifact: ONNX Runtime's own word.
    older = target_fields({"precision": "fp16", "build": {"effectivePrecision": "fp32"}})
    assert older["precision"] == "fp32" and "fp16 was asked for" in older["precisionReason"]
    # A target with nothing built has no precision to show, and no figures.
    pending = rows_of([{"metadata": {"name": "p"}, "spec": {"precision": "fp16"},
                        "status": {"targets": [{"name": "cpu", "phase": "Pending"}]}}])  # fmt: skip
    assert (pending[0].precision, pending[0].resolution) == ("not built", "0x0")


def test_the_plot_has_a_line_per_target_and_a_point_per_resolution(
    sweep: list[dict[str, Any]], tmp_path: Path
) -> None:
    figure = plot(rows_of(sweep), tmp_path / "sweep")
    (axes,) = figure.axes
    labels = [line.get_label() for line in axes.lines]
    # a line per target and precision; l4 was never timed: no line for it
    assert labels == ["cpu fp32 AP", "cpu fp32 APm", "cpu int8 AP", "cpu int8 APm"]
    fp32 = axes.lines[0]
    assert list(fp32.get_xdata()) == [20.0, 40.0] and list(fp32.get_ydata()) == [50.0, 55.0]
    assert list(axes.lines[2].get_xdata()) == [12.0]
    assert "latency" in axes.get_xlabel() and "AP" in axes.get_ylabel()
    png = (tmp_path / "sweep.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    svg = ET.parse(tmp_path / "sweep.svg").getroot()
    assert svg.tag.endswith("svg") and any("line2d" in (e.get("id") or "") for e in svg.iter())


def test_the_latency_gauges_follow_the_status(sweep: list[dict[str, Any]]) -> None:
    status = sweep[1]["status"]
    metrics.record_ap("a", "ns", status)
    sample = metrics.TARGET_LATENCY.labels("ns", "a", "cpu", "batch1")._value.get()
    assert sample == 20.0
    metrics.forget("a", "ns")
    assert ("ns", "a", "cpu", "batch1") not in metrics.TARGET_LATENCY._metrics


def test_the_sweep_example_makes_one_valid_resource_per_resolution_and_precision(
    helm: Path,
) -> None:
    done = subprocess.run(
        [str(helm), "template", "sweep", str(ROOT / "examples" / "resolution-sweep")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    sizes = {(d["spec"]["input"]["height"], d["spec"]["input"]["width"]) for d in docs}
    assert sizes == {(224, 320), (288, 384), (320, 448)} and len(docs) == 9
    for doc in docs:
        assert doc["metadata"]["labels"]["bodypose.dev/sweep"] == "bpnet"
        spec = BodyPoseExportSpec.model_validate(doc["spec"])
        assert (spec.calibration is not None) == (spec.precision == "int8")
