"""The `--max_ap_drop` gate on an engine that really loses accuracy.

The reference is an ONNX model whose last convolutions (1x1, identity
kernels, one for the heatmaps and one for the PAFs, as BpNet's `heatmap_out`
and `paf_out`) put out the ideal heatmaps and PAFs of two hand-made people
(`synthetic.outputs`): on an image of the network's size, and annotations of
those people, its OKS AP is exactly 1.0. The "engine" is built by the
ONNX Runtime backend from a copy of that ONNX model whose last convolution
kernels had seeded Gaussian noise added on purpose (`numpy_helper`), the way
a bad quantization mixes channels: its joints move, extra people appear and
its AP falls. The gate (`evaluation.ap_gate`, `--max_ap_drop` in AP points) must
let a harmless perturbation through and refuse the damaging one with exit
code 3 and the sentence a user reads: both APs, the drop, the limit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from bodypose_exporter.engines import backend_by_name
from bodypose_exporter.evaluation.__main__ import main
from tests.conftest import FIGURES
from tests.evaluation.synthetic import Array, coco_dataset, outputs, person
from tests.support.builds import build_request

H, W = 224, 320
PEOPLE = [person(20, 20, 110, 190), person(170, 30, 120, 180)]
AP = "AP"
MAX_AP_DROP = "2"  # AP points
#: Seed and standard deviation of the noise added to the damaged engine's kernels.
DAMAGE = (0, 0.3)
#: Its AP: both people still found at OKS 0.5 (AP_0.5 1.0), none at 0.75 (AP_0.75 0.0).
DAMAGED_AP = 0.4010
HARMLESS = (0, 0.01)
REFUSAL = (
    "python -m bodypose_exporter.evaluation: error: fp32 engine AP 40.10 vs FP32 AP 100.00: "
    "a drop of 59.90 AP points exceeds the limit of 2 (maxApDrop). An FP32 engine should "
    "lose nothing: check that it was built from this model."
)


def ideal_model(heat: Array, paf: Array) -> onnx.ModelProto:
    """input_1:0 (N, H, W, 3) -> heatmap_out/BiasAdd:0, paf_out/BiasAdd:0 (NHWC, stride 8).

    The features before the last convolutions are the ideal outputs (an
    initializer); the input enters through a zero-weighted mean so that the
    graph is a function of it, as every network is.
    """
    nodes = [
        helper.make_node("ReduceMean", ["input_1:0"], ["input_mean"], keepdims=1),
        helper.make_node("Mul", ["input_mean", "zero"], ["input_term"]),
    ]
    initializers = [numpy_helper.from_array(np.zeros((), np.float32), "zero")]
    outs = []
    for name, ideal in (("heatmap_out", heat), ("paf_out", paf)):
        channels = ideal.shape[-1]
        initializers += [
            numpy_helper.from_array(ideal.transpose(2, 0, 1)[None].copy(), f"{name}/features"),
            numpy_helper.from_array(
                np.eye(channels, dtype=np.float32)[:, :, None, None], f"{name}/kernel"
            ),
            numpy_helper.from_array(np.zeros(channels, np.float32), f"{name}/bias"),
        ]
        nodes += [
            helper.make_node(
                "Conv", [f"{name}/features", f"{name}/kernel", f"{name}/bias"], [f"{name}/conv"]
            ),
            helper.make_node("Transpose", [f"{name}/conv"], [f"{name}/nhwc"], perm=[0, 2, 3, 1]),
            helper.make_node("Add", [f"{name}/nhwc", "input_term"], [f"{name}/BiasAdd:0"]),
        ]
        outs.append(
            helper.make_tensor_value_info(
                f"{name}/BiasAdd:0", TensorProto.FLOAT, [None, H // 8, W // 8, channels]
            )
        )
    graph = helper.make_graph(
        nodes,
        "ideal_bpnet",
        [helper.make_tensor_value_info("input_1:0", TensorProto.FLOAT, [None, H, W, 3])],
        outs,
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    return model


def damaged(model: onnx.ModelProto, seed: int, sigma: float) -> onnx.ModelProto:
    """A copy with seeded noise on the last convolutions' kernels (joints and PAFs).

    The heatmaps' background channel is left out of the mixing: with it, every
    cell of every joint channel becomes a candidate peak.
    """
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    rng = np.random.default_rng(seed)
    for init in copy.graph.initializer:
        if not init.name.endswith("/kernel"):
            continue
        kernel = numpy_helper.to_array(init)
        noise = rng.normal(0.0, sigma, kernel.shape).astype(np.float32)
        if init.name.startswith("heatmap_out"):
            noise[-1] = 0.0
            noise[:, -1] = 0.0
        init.CopyFrom(numpy_helper.from_array((kernel + noise).astype(np.float32), init.name))
    return copy


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ann.json, images/synthetic.png (network-sized: the letterbox is the identity), ref.onnx."""
    root = tmp_path_factory.mktemp("ap_gate")
    (root / "images").mkdir()
    cv2.imwrite(str(root / "images" / "synthetic.png"), np.full((H, W, 3), 128, np.uint8))
    (root / "ann.json").write_text(json.dumps(coco_dataset(PEOPLE, H, W)))
    onnx.save(ideal_model(*outputs(PEOPLE, H, W)), str(root / "ref.onnx"))
    return root


def engine_of(case: Path, seed: int, sigma: float) -> Path:
    source = case / f"damaged-{seed}-{sigma}.onnx"
    onnx.save(damaged(onnx.load(str(case / "ref.onnx")), seed, sigma), str(source))
    engine = case / f"bpnet_model.{H}.{W}.fp32.{seed}-{sigma}.engine"
    backend_by_name("onnxruntime").build(build_request(source, engine, precision="fp32"))
    return engine


def args(case: Path, engine: Path, output: Path) -> list[str]:
    return [
        "--annotations", str(case / "ann.json"),
        "--images", str(case / "images"),
        "--onnx", str(case / "ref.onnx"),
        "--engine", str(engine),
        "--engine_backend", "onnxruntime",
        "--max_ap_drop", MAX_AP_DROP,
        "--output", str(output),
    ]  # fmt: skip


def test_the_gate_refuses_an_engine_whose_ap_falls(
    case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = engine_of(case, *DAMAGE)
    capsys.readouterr()
    code = main(args(case, engine, tmp_path / "ap.json"))
    out, err = capsys.readouterr()
    report = json.loads((tmp_path / "ap.json").read_text())
    assert report["fp32"][AP] == 1.0
    assert report["engine"][AP] == pytest.approx(DAMAGED_AP, abs=1e-4)
    assert (report["engine"]["AP50"], report["engine"]["AP75"]) == (1.0, 0.0)
    assert report["gate"]["apDrop"] == pytest.approx(100 * (1.0 - DAMAGED_AP), abs=1e-2)
    assert (report["gate"]["maxApDrop"], report["gate"]["passed"]) == (2.0, False)
    assert code == 3
    assert err.strip().splitlines()[-1] == REFUSAL
    rows = [line.split() for line in out.splitlines()]
    assert ["fp32", "100.00", "100.00", "100.00"] in [row[:4] for row in rows]
    assert ["fp32", "(onnxruntime)", "40.10", "100.00", "0.00"] in [row[:5] for row in rows]
    assert ["drop", "(AP", "points)", "59.90", "0.00", "100.00"] in [row[:6] for row in rows]
    FIGURES.append(
        f"evaluation gate: ideal reference AP {report['fp32'][AP]:.4f}, engine with noise "
        f"sigma {DAMAGE[1]} on its last convolutions AP {report['engine'][AP]:.4f}: refused"
    )


def test_the_gate_passes_a_harmless_perturbation(
    case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = engine_of(case, *HARMLESS)
    code = main(args(case, engine, tmp_path / "ap.json"))
    report = json.loads((tmp_path / "ap.json").read_text())
    assert (code, report["fp32"][AP], report["engine"][AP]) == (0, 1.0, 1.0)
    assert report["gate"] == {**report["gate"], "apDrop": 0.0, "passed": True}
    out, err = capsys.readouterr()
    assert "error" not in err
    assert (
        "passed: fp32 engine AP 100.00 vs FP32 AP 100.00: a drop of 0.00 AP points, "
        "within the limit of 2" in out
    )


def test_the_refusal_as_a_process_sees_it(case: Path, tmp_path: Path) -> None:
    """`python -m bodypose_exporter.evaluation` as a user runs it: exit status 3, one line."""
    engine = engine_of(case, *DAMAGE)
    done = subprocess.run(
        [sys.executable, "-m", "bodypose_exporter.evaluation", *args(case, engine, tmp_path / "a")],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert done.stderr.strip().splitlines()[-1] == REFUSAL
