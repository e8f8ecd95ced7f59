"""`bodypose-report`'s plot never puts a CUDA-event latency and a wall-clock one on one axis.

A sweep whose statuses hold both kinds (a TensorRT target timed by CUDA events, an
ONNX Runtime one by the wall clock): the figure has a panel per clock, each axis
naming its clock, each line on the panel of its own kind. Read from matplotlib's
objects, not from pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bodypose_operator.controller.manifests import target_fields
from bodypose_operator.report import plot, rows_of


def manifest(clock: str, includes: list[str], median: float, ap: float) -> dict[str, Any]:
    return {
        # a build manifest says the precision its artifact runs; the report reads it
        # from the status (issue 30, item 4), never from the spec
        "precision": "fp32",
        "latency": {
            "clock": clock, "includes": includes, "device": "somewhere",
            "batch1": {"batch": 1, "medianMs": median, "p90Ms": median, "imagesPerSecond": 1.0},
        },
        "evaluation": {"figures": {"AP": ap, "APm": ap - 5, "APl": ap + 2}},
    }  # fmt: skip


def sweep_resource(
    name: str, height: int, width: int, gpu_ms: float, cpu_ms: float
) -> dict[str, Any]:
    targets = [
        {"name": "a100", "phase": "Ready",
         **target_fields(manifest("cuda-events", ["inference"], gpu_ms, 50.0 + height / 100))},
        {"name": "cpu", "phase": "Ready",
         **target_fields(manifest("wall", ["inference", "output conversion"], cpu_ms,
                                  49.0 + height / 100))},
    ]  # fmt: skip
    return {
        "metadata": {"name": name},
        "spec": {"input": {"height": height, "width": width}, "precision": "fp32"},
        "status": {"targets": targets, "resolution": f"{height}x{width}"},
    }


def test_cuda_event_and_wall_clock_latencies_get_a_panel_each_naming_its_clock(
    tmp_path: Path,
) -> None:
    rows = rows_of([sweep_resource("a", 224, 320, 1.5, 20.0),
                    sweep_resource("b", 320, 448, 2.5, 40.0)])  # fmt: skip
    figure = plot(rows, tmp_path / "sweep")
    panels = figure.axes
    assert len(panels) == 2, "two clocks on one axis"
    by_clock = {}
    for axes in panels:
        label = axes.get_xlabel()
        kinds = [k for k in ("CUDA events", "wall clock") if k in label]
        assert len(kinds) == 1, f"the axis {label!r} must name exactly one clock"
        by_clock[kinds[0]] = axes
        assert kinds[0] in axes.get_title()
    cuda, wall = by_clock["CUDA events"], by_clock["wall clock"]
    assert "no copies" in cuda.get_xlabel() and "copies and conversions" in wall.get_xlabel()
    legend = [t.get_text() for t in cuda.get_legend().get_texts()]
    assert legend == ["a100 fp32 AP", "a100 fp32 APm"]
    assert [t.get_text() for t in wall.get_legend().get_texts()] == ["cpu fp32 AP", "cpu fp32 APm"]
    assert list(cuda.lines[0].get_xdata()) == [1.5, 2.5]
    assert list(wall.lines[0].get_xdata()) == [20.0, 40.0]
    assert "not across" in figure._suptitle.get_text()


def test_one_clock_is_one_panel_that_names_it(tmp_path: Path) -> None:
    resource = sweep_resource("a", 224, 320, 1.5, 20.0)
    resource["status"]["targets"] = resource["status"]["targets"][1:]
    (axes,) = plot(rows_of([resource]), tmp_path / "cpu").axes
    assert "wall clock" in axes.get_xlabel() and "CUDA" not in axes.get_xlabel()
