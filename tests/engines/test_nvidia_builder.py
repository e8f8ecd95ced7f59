"""NVIDIA's builder over every model the export publishes, here, with no GPU.

TensorRT itself cannot be installed on these machines; NVIDIA's TensorRT-RTX
can (`tensorrt-rtx-cu13`, from the package index) and builds engines ahead of
time with no GPU. Its parser and builder are TensorRT's lineage, and its API
is TensorRT 11's: strongly typed networks only, no FP16/INT8 builder flags,
no calibrators, no precision constraints. So each published model (the plain
FP32 graph, the FP16 model, the QDQ model and the SDK-compatible deploy
graph, at TAO's three resolutions) goes through:

- the TensorRT backend's own TensorRT 11 route: its plan for TensorRT 11
  (`engines.trt.builder.plan_build`), its network, config and engine loaders,
  with TensorRT-RTX standing in for `tensorrt` (Polygraphy drives it with
  `POLYGRAPHY_USE_TENSORRT_RTX=1`; its `CreateConfig` refuses the removed
  precision flags there). A loader that touched a removed API would fail;
- the tensorrt-rtx backend's build for compute capability 8.9.

Both build for real, in a process of their own (Polygraphy drives one of the
two per process), and write the engine files whose sizes the test prints. A
graph the parser rejects fails with the parser's own message. Nothing here
runs an engine: there is no GPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bodypose_exporter.convert.fidelity import read_verification_reference
from bodypose_exporter.convert.fp16 import write_fp16_model
from tests.conftest import FIGURES

ROOT = Path(__file__).resolve().parents[2]
SIZES = ((224, 320), (288, 384), (320, 448))
KEY = "nvidia_tlt"

#: Runs in a process of its own: for every model, the TensorRT backend's TensorRT 11 plan and
#: loaders (tensorrt = tensorrt_rtx), then the tensorrt-rtx backend's build for 8.9.
BUILD_ALL = """
import json, sys, time
from pathlib import Path
from bodypose_exporter.engines.trt_rtx.runtime import tensorrt_rtx  # switches Polygraphy first
trt = tensorrt_rtx()
sys.modules["tensorrt"] = trt  # the TensorRT backend's loaders, on TensorRT 11's API surface
from bodypose_exporter.engines.base import BuildRequest, EngineOptions
from bodypose_exporter.engines.trt import builder as trt_builder
from bodypose_exporter.engines.trt_rtx.args import TensorRTRTXOptions
from bodypose_exporter.engines.trt_rtx.builder import TensorRTRTXBuilder
out = []
for case in json.loads(sys.argv[1]):
    onnx, precision, files = Path(case["onnx"]), case["precision"], case["files"]
    engine = Path(case["engine"])
    request = BuildRequest(EngineOptions(precision=precision, max_batch_size=2,
                                         backend_options=(TensorRTRTXOptions(("8.9",)),)),
                           onnx_path=onnx, engine_path=engine,
                           **{k: Path(v) for k, v in files.items()})
    plan = trt_builder.plan_build(request, "11.0.0")
    started = time.perf_counter()
    data = trt_builder.engine_loader(trt_builder.network_loader(trt, plan, None),
                                     trt_builder.config_loader(trt, plan, None), plan,
                                     save_timing=False)()
    seconds = time.perf_counter() - started
    row = {"name": case["name"], "model": str(plan.model), "trt11": len(bytes(data)),
           "trt11Seconds": round(seconds, 2), "stronglyTyped": plan.strongly_typed}
    if precision in ("fp32", "fp16"):
        built = TensorRTRTXBuilder().build(request)
        row["rtx"] = built.path.stat().st_size
    out.append(row)
print(json.dumps(out))
"""


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "POLYGRAPHY_USE_TENSORRT_RTX"}
    return subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, env=env,
        timeout=1200, cwd=ROOT,
    )  # fmt: skip


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[int, int], Path]:
    """The trained sample exported int8 and SDK-compatible with an evaluation set at TAO's
    three sizes: each export publishes the plain graph, the deploy graph and the QDQ
    model; the FP16 model is written from the plain graph as an fp16 export writes it."""
    from bodypose_exporter.evaluation.artifact_ap import EvaluationRequest
    from bodypose_exporter.stages.calibrate import CalibrationRequest
    from bodypose_exporter.stages.export import ExportRequest, InputDims, run_export
    from bodypose_exporter.stages.sample import write_trained_sample

    sample = write_trained_sample(tmp_path_factory.mktemp("trained"), KEY, images=8)
    exports = {}
    for height, width in SIZES:
        out = tmp_path_factory.mktemp(f"published-{height}x{width}")
        run_export(
            ExportRequest(
                model=str(sample.model), key=KEY, output=str(out / "bpnet_model.etlt"),
                dims=InputDims(height, width, 3), sdk_compatible=True, data_type="int8",
                calibration=CalibrationRequest(
                    cache_file=str(out / "scratch.cal.bin"),
                    image_dir=str(sample.calibration_images), batches=2, batch_size=2,
                ),
                evaluation=EvaluationRequest(str(sample.annotations), str(sample.images)),
            )
        )  # fmt: skip
        inputs, _ = read_verification_reference(out / "reference.npz")
        write_fp16_model(out / "bpnet_model.onnx", out / "bpnet_model.fp16.onnx",
                         inputs.astype(np.float32))  # fmt: skip
        exports[(height, width)] = out
    return exports


def test_every_published_model_builds_with_nvidias_builder(
    published: dict[tuple[int, int], Path], tmp_path: Path
) -> None:
    cases = []
    for (height, width), out in published.items():
        size = f"{height}x{width}"
        plain, engines = out / "bpnet_model.onnx", tmp_path / size
        cases += [
            {"name": f"{size} plain", "onnx": str(plain), "precision": "fp32", "files": {},
             "engine": str(engines / "plain.fp32.engine")},
            {"name": f"{size} FP16 model", "onnx": str(plain), "precision": "fp16",
             "files": {"fp16_model": str(out / "bpnet_model.fp16.onnx")},
             "engine": str(engines / "plain.fp16.engine")},
            {"name": f"{size} QDQ model", "onnx": str(plain), "precision": "int8",
             "files": {"qdq_model": str(out / "bpnet_model.qdq.onnx")},
             "engine": str(engines / "plain.int8.engine")},
            {"name": f"{size} deploy", "onnx": str(out / "bpnet_model.deploy.onnx"),
             "precision": "fp32", "files": {}, "engine": str(engines / "deploy.fp32.engine")},
        ]  # fmt: skip
    done = _run(BUILD_ALL, json.dumps(cases))
    assert done.returncode == 0, done.stderr[-4000:]
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    assert [r["name"] for r in rows] == [c["name"] for c in cases]
    for row in rows:
        assert row["stronglyTyped"] and row["trt11"] > 0, row
        if "rtx" in row:
            assert row["rtx"] > 0
        FIGURES.append(
            f"NVIDIA builder (TensorRT-RTX {_rtx_version()}), {row['name']}: TensorRT 11 route "
            f"{row['trt11'] / 1e6:.1f} MB in {row['trt11Seconds']} s"
            + (f"; tensorrt-rtx backend for 8.9 {row['rtx'] / 1e6:.1f} MB" if "rtx" in row else "")
        )


PARSE_BROKEN = """
from pathlib import Path
import sys
from bodypose_exporter.engines.base import BuildRequest, EngineOptions
from bodypose_exporter.engines.trt_rtx.args import TensorRTRTXOptions
from bodypose_exporter.engines.trt_rtx.builder import TensorRTRTXBuilder
from bodypose_exporter.errors import UserError
try:
    TensorRTRTXBuilder().build(BuildRequest(
        EngineOptions(backend_options=(TensorRTRTXOptions(("8.9",)),)), onnx_path=Path(sys.argv[1]),
        engine_path=Path(sys.argv[2])))
except UserError as exc:
    print(exc)
"""


def test_a_graph_the_parser_rejects_fails_with_the_parsers_message(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    image = helper.make_tensor_value_info("input_1:0", TensorProto.FLOAT, [None, 8, 8, 3])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4, 6, 6])
    kernel = numpy_helper.from_array(np.zeros((4, 5, 3, 3), np.float32), "w")  # 5 channels of 3
    nodes = [
        helper.make_node("Transpose", ["input_1:0"], ["t"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["t", "w"], ["y"], name="bad_conv"),
    ]
    graph = helper.make_graph(nodes, "broken", [image], [out], [kernel])
    model = tmp_path / "broken.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(model))
    done = _run(PARSE_BROKEN, str(model), str(tmp_path / "x.engine"))
    # Polygraphy logs the parser's lines to stdout too; ours is the refusal the user reads.
    said = next((ln for ln in done.stdout.splitlines() if ln.startswith("TensorRT-RTX")), "")
    assert said.startswith(
        f"TensorRT-RTX could not build the engine from {model}: NVIDIA's ONNX parser: node 1 "
        "(Conv 'bad_conv'): Assertion failed: (nchan == -1 || kernelWeights.shape.d[1] * "
        "ngroup == nchan): Kernel weight dimension failed to broadcast to input."
    ), done.stdout + done.stderr
    assert not (tmp_path / "x.engine").exists()


def _rtx_version() -> str:
    from importlib.metadata import version

    return version("tensorrt-rtx-cu13")
