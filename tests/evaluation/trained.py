"""The trained sample through the product's own path: export (int8 calibrated), build, evaluate.

`bpnet sample --trained`'s model (`stages.sample.write_trained_sample`:
trained once, then from ~/.cache/bodypose-export/samples/), exported by
`run_export` at its training size with int8 calibration on its calibration
drawings, engines built by `run_build` with the onnxruntime backend (as the
operator's CPU build Jobs, and benchmarks/engines.py, do), each evaluated
with `evaluation.evaluate_set` on the evaluation drawings.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import numpy_helper

from bodypose_exporter.engines.registry import ONNX_REFERENCE
from bodypose_exporter.evaluation.ap_figures import ApFigures
from bodypose_exporter.evaluation.artifact_ap import evaluate_artifact
from bodypose_exporter.evaluation.dataset import EvaluationSet
from bodypose_exporter.evaluation.skeleton import NUM_JOINTS
from bodypose_exporter.stages.build import run_build
from bodypose_exporter.stages.calibrate import CalibrationRequest
from bodypose_exporter.stages.export import ExportRequest, InputDims, run_export
from bodypose_exporter.synthetic.people import SetSpec
from tests.support.builds import stage_request

KEY = "nvidia_tlt"
HEIGHT, WIDTH = SetSpec().height, SetSpec().width
#: 24 of the 40 calibration drawings (the rest are held back for the agreement figures).
BATCHES, BATCH_SIZE = 6, 4
#: Verification gates lifted, so that the AP gate alone judges an engine (never published).
LIFTED = (("maxAbsDiff", 1e9), ("cosine", 0.0), ("peakAgreement", 0.0))


def export_int8(model: Path, calibration_images: Path, out: Path) -> Path:
    """`bpnet-export -d H,W,3 --data_type int8 --cal_image_dir ...`: the artifacts' directory."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(model, out / "bpnet_model.tlt")
    run_export(
        ExportRequest(
            model=str(out / "bpnet_model.tlt"),
            key=KEY,
            output=str(out / "bpnet_model.etlt"),
            dims=InputDims(HEIGHT, WIDTH, 3),
            data_type="int8",
            calibration=CalibrationRequest(
                cache_file=str(out / "cal.bin"),
                image_dir=str(calibration_images),
                batches=BATCHES,
                batch_size=BATCH_SIZE,
            ),
        )
    )
    return out


def build(exported: Path, precision: str, out: Path, onnx: Path | None = None) -> Path:
    """`bpnet-build --engine_backend onnxruntime` (int8 from the QDQ model and cal.bin)."""
    int8 = precision == "int8"
    engine = out / f"bpnet_model.{HEIGHT}.{WIDTH}.{precision}.engine"
    result = run_build(
        stage_request(
            onnx=str(onnx or exported / "bpnet_model.onnx"),
            engine_file=str(engine),
            reference=str(exported / "reference.npz"),
            precision=precision,
            backend="onnxruntime",
            calibration_cache=str(exported / "cal.bin") if int8 else None,
            qdq_model=str(exported / "bpnet_model.qdq.onnx") if int8 else None,
            gates=LIFTED,
            publish_rejected=False,
        )
    )
    # An onnxruntime artifact is an ONNX model, named for the precision it runs (fp16: fp32).
    return Path(result.manifest["artifacts"][0]["path"])


def evaluate(artifact: Path, evaluation_set: EvaluationSet) -> ApFigures:
    """An onnxruntime artifact's AP at the sample's size, as the stages measure it."""
    return evaluate_artifact(ONNX_REFERENCE, artifact, evaluation_set, HEIGHT, WIDTH)


def damaged(onnx_path: Path, out: Path, sigma: float, seed: int = 0) -> Path:
    """A copy whose last heatmap and PAF convolution kernels carry seeded Gaussian noise of
    `sigma` times each kernel's standard deviation (weights damaged on purpose)."""
    model = onnx.load(str(onnx_path))
    rng = np.random.default_rng(seed)
    touched = 0
    for init in model.graph.initializer:
        value = numpy_helper.to_array(init)
        if ("heatmap_out" in init.name or "paf_out" in init.name) and value.ndim == 4:
            noise = rng.normal(0.0, sigma * float(value.std()), value.shape)
            init.CopyFrom(numpy_helper.from_array((value + noise).astype(np.float32), init.name))
            touched += 1
    assert touched == 2, f"expected the 2 output kernels in {onnx_path}, found {touched}"
    onnx.save(model, str(out))
    return out


def flattened(onnx_path: Path, out: Path, level: float = 0.5) -> Path:
    """A copy whose last heatmap convolution lost its weights: kernel 0, bias `level` on the
    joint channels (0 on the background), so every heatmap is flat (a broken engine's)."""
    model = onnx.load(str(onnx_path))
    touched = set()
    for init in model.graph.initializer:
        value = numpy_helper.to_array(init)
        if "heatmap_out" not in init.name or value.ndim not in (1, 4):
            continue
        flat = np.zeros_like(value)
        if value.ndim == 1:
            flat[:NUM_JOINTS] = level
        init.CopyFrom(numpy_helper.from_array(flat, init.name))
        touched.add(value.ndim)
    assert touched == {1, 4}, f"expected heatmap_out's kernel and bias in {onnx_path}"
    onnx.save(model, str(out))
    return out


def blank_images(directory: Path, count: int) -> Path:
    """`count` uniform grey images: a calibration set that shows the network nothing."""
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        cv2.imwrite(
            str(directory / f"blank_{i:03d}.png"), np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
        )
    return directory
