"""The decoder's cap on heatmap peak candidates per joint.

A broken engine's heatmaps are flat or noisy: nearly every pixel is a local
maximum, and scoring every pair of candidates of an edge took a damaged
engine's evaluation past 24 GB before it was killed. The decoder keeps at
most `MAX_CANDIDATES_PER_JOINT` per joint (NVIDIA's trt_pose caps the same
way, `evaluation/peaks.py`), counts the images on which the cap was hit, and
the AP gate refuses an engine that hit it more often than the FP32 model,
with a sentence that names the cap. Here: flat heatmaps decoded under
`tracemalloc` (numpy's allocations are traced), the strongest candidates
kept in TAO's order, the gate's verdict and message, and `bpnet evaluate`
on an engine whose heatmap convolution lost its weights.
"""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from bodypose_exporter.engines import backend_by_name
from bodypose_exporter.engines.registry import ONNX_REFERENCE
from bodypose_exporter.evaluation.__main__ import main
from bodypose_exporter.evaluation.ap_figures import ApFigures
from bodypose_exporter.evaluation.ap_gate import (
    CAPPED_ADVICE,
    ApDropError,
    check_ap_drop,
    enforce_ap_drop,
)
from bodypose_exporter.evaluation.decode import decode, upsample
from bodypose_exporter.evaluation.peaks import MAX_CANDIDATES_PER_JOINT, find_peaks
from bodypose_exporter.evaluation.skeleton import HEATMAP_CHANNELS, NUM_JOINTS, PAF_CHANNELS
from tests.evaluation.synthetic import outputs
from tests.evaluation.test_ap_gate import PEOPLE, H, W, case
from tests.support.builds import build_request

__all__ = ["case"]  # the module fixture of test_ap_gate, shared

CAP = MAX_CANDIDATES_PER_JOINT
#: Far more than decoding the flat heatmaps needs (upsampled outputs ~17 MB), far less
#: than scoring every pair of their ~70 000 candidates per joint would.
MEMORY_BOUND = 128 << 20


def flat_outputs(level: float = 0.5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stride-8 outputs of a broken engine: every heatmap cell `level`, PAFs seeded noise."""
    heat = np.full((H // 8, W // 8, HEATMAP_CHANNELS), level, np.float32)
    paf = np.random.default_rng(seed).normal(0.0, 1.0, (H // 8, W // 8, PAF_CHANNELS))
    return heat, paf.astype(np.float32)


def test_flat_heatmaps_are_capped_per_joint_in_bounded_memory() -> None:
    heat, paf = flat_outputs()
    tracemalloc.start()
    try:
        decoded = decode(heat, paf)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sorted(decoded.capped) == list(range(NUM_JOINTS))  # every joint hit the cap
    assert min(decoded.capped.values()) > 10 * CAP  # of thousands of candidates each
    assert peak < MEMORY_BOUND, f"decoding took {peak / 2**20:.0f} MiB"


def test_the_kept_candidates_are_numbered_as_tao_numbers_them() -> None:
    heat, _ = flat_outputs()
    candidates = find_peaks(upsample(heat, 8))
    assert [len(p) for p in candidates.peaks] == [CAP] * NUM_JOINTS
    ids = [p.id for joint in candidates.peaks for p in joint]
    assert ids == list(range(CAP * NUM_JOINTS))  # joint order, then row-major
    first = candidates.peaks[0]
    assert [(p.y, p.x) for p in first] == sorted((p.y, p.x) for p in first)


def test_the_strongest_candidates_are_the_ones_kept() -> None:
    """150 separate bumps of rising height in one joint: the 100 highest stay, row-major."""
    heat = np.zeros((H, W, HEATMAP_CHANNELS), np.float32)
    centres = [(8 + 14 * (i // 15), 8 + 20 * (i % 15)) for i in range(150)]
    order = np.random.default_rng(1).permutation(150)  # heights not in scan order
    for (y, x), rank in zip(centres, order, strict=True):
        heat[y - 1 : y + 2, x - 1 : x + 2, 3] = 1.0 + rank / 150
    candidates = find_peaks(heat)
    assert candidates.capped == {3: 150}
    kept = [(p.y, p.x) for p in candidates.peaks[3]]
    strongest = {centres[i] for i in range(150) if order[i] >= 50}
    assert set(kept) == strongest and kept == sorted(kept)


def test_a_healthy_model_is_never_capped() -> None:
    decoded = decode(*outputs(PEOPLE, H, W))
    assert (len(decoded.people), decoded.capped) == (2, {})


def _figures(ap: float, capped: int) -> ApFigures:
    return ApFigures(ap, ap, ap, ap, ap, images=40, peak_candidates_capped=capped)


def test_the_gate_refuses_an_engine_that_hit_the_cap_naming_it() -> None:
    """Even with an AP gain: figures decoded from capped heatmaps are a broken engine's."""
    verdict = check_ap_drop(_figures(0.50, 0), _figures(0.55, 40), "int8")
    assert verdict.passed is False and verdict.drop == -5.0
    assert verdict.as_dict()["peakCandidatesCapped"] == 40
    message = (
        f"int8 engine refused: its heatmaps gave more than {CAP} peak candidates of a joint "
        "(the decoder's cap per joint) on 40 of 40 evaluation images, the FP32 model's on 0. "
        "Heatmaps that flat or noisy come from a broken engine, so its AP says nothing about "
        "its keypoints (AP 55.00 vs FP32 AP 50.00, a drop of -5.00 AP points; limit 3). "
        f"{CAPPED_ADVICE['int8']}"
    )
    assert verdict.message == message
    with pytest.raises(ApDropError) as refused:
        enforce_ap_drop(verdict)
    assert (str(refused.value), refused.value.exit_code) == (message, 3)


def test_images_the_fp32_model_caps_too_are_not_held_against_the_engine() -> None:
    verdict = check_ap_drop(_figures(0.50, 1), _figures(0.49, 1), "fp32", 2.0)
    assert verdict.passed is True
    assert verdict.message.endswith("within the limit of 2")


def flat_engine(case: Path) -> Path:
    """The ideal model's copy whose heatmap convolution lost its weights (kernel 0, bias 0.5
    on the joint channels): flat heatmaps, built as an fp32 ONNX Runtime artifact."""
    model = onnx.load(str(case / "ref.onnx"))
    for init in model.graph.initializer:
        if init.name in ("heatmap_out/kernel", "heatmap_out/bias"):
            value = np.zeros_like(numpy_helper.to_array(init))
            if init.name.endswith("bias"):
                value[:NUM_JOINTS] = 0.5
            init.CopyFrom(numpy_helper.from_array(value, init.name))
    source = case / "flat-heatmaps.onnx"
    onnx.save(model, str(source))
    engine = case / f"bpnet_model.{H}.{W}.fp32.flat.engine"
    backend_by_name(ONNX_REFERENCE).build(build_request(source, engine, precision="fp32"))
    return engine


def test_bpnet_evaluate_reports_the_cap_and_refuses_the_engine(
    case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = flat_engine(case)
    capsys.readouterr()
    code = main(
        [
            "--annotations", str(case / "ann.json"), "--images", str(case / "images"),
            "--onnx", str(case / "ref.onnx"), "--engine", str(engine),
            "--engine_backend", "onnxruntime", "--output", str(tmp_path / "ap.json"),
        ]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 3
    report = json.loads((tmp_path / "ap.json").read_text())
    assert (report["fp32"]["peakCandidatesCapped"], report["engine"]["peakCandidatesCapped"]) == (
        0,
        1,
    )
    assert report["gate"]["passed"] is False
    assert (
        f"note: fp32 (onnxruntime): the decoder kept at most {CAP} heatmap peak candidates per "
        "joint and hit that cap on 1 of 1 images: heatmaps that flat or noisy come from a "
        "broken model or engine, so these figures are a broken one's" in out
    )
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith(
            "python -m bodypose_exporter.evaluation: error: fp32 engine refused: its heatmaps gave "
            f"more than {CAP} peak candidates of a joint (the decoder's cap per joint) on 1 of 1 "
            "evaluation images, the FP32 model's on 0."
        )
    )
