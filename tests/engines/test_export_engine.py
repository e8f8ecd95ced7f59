"""`bpnet-export --engine_file`: export, then build, verify and record the engine in one run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bodypose_exporter.cli.main import export_main as main
from tests.conftest import SAMPLE_KEY


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def model(sample_dir: Path, tmp_path: Path) -> Path:
    shutil.copy(sample_dir / "bpnet_sample.tlt", tmp_path / "bpnet_model.tlt")
    return tmp_path / "bpnet_model.tlt"


def test_engine_named_as_tao_verified_and_in_the_manifest(
    model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = model.parent
    code, out, err = run(
        capsys,
        "-m", str(model), "-k", SAMPLE_KEY, "-d", "224,320,3",
        "--engine_file", f"{out_dir}/",
        "--engine_backend", "onnxruntime",
        "--max_batch_size", "2",
    )  # fmt: skip
    assert code == 0, err
    # an onnxruntime artifact is an ONNX model: named .onnx, not TAO's .engine
    engine = out_dir / "bpnet_model.224.320.fp32.onnx"
    assert engine.is_file() and not (out_dir / "bpnet_model.224.320.fp32.engine").exists()
    manifest = json.loads((out_dir / "manifest.json").read_text())
    kinds = [a["kind"] for a in manifest["artifacts"]]
    assert kinds == [
        "etlt", "onnx", "reference", "engine", "triton-config", "triton-model",
        "deepstream-config",
    ]  # fmt: skip
    entry = manifest["engine"]
    assert entry["path"] == str(engine) and entry["backend"] == "onnxruntime"
    assert entry["runtime"] == "ONNX Runtime"
    assert (out_dir / "triton" / "bpnet" / "1" / "model.onnx").is_file()
    assert (out_dir / "bodypose2d_pgie_config.txt").is_file()
    assert entry["maxBatchSize"] == 2 and entry["verification"]["passed"]
    assert entry["hardware"]["instructionSets"]
    assert "verification maxAbsDiff" in out and "engine" in out
    assert not list(out_dir.glob("manifest.rejected.json"))


def test_failed_gate_keeps_the_export_records_figures_and_exits_3(
    model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = model.parent / "deploy"
    code, _, err = run(
        capsys,
        "-m", str(model), "-k", SAMPLE_KEY, "-d", "224,320,3",
        "-o", str(out_dir / "bpnet_model.deploy.etlt"),
        "--sdk_compatible_model",
        "--engine_file", f"{out_dir}/",
        "--engine_backend", "onnxruntime",
        "--min_peak_agreement", "1.5",
    )  # fmt: skip
    assert code == 3
    assert "peakAgreement 1 < gate 1.5 (--min_peak_agreement)" in err
    assert not (out_dir / "bpnet_model.224.320.fp32.deploy.engine").exists()
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert [a["kind"] for a in manifest["artifacts"]] == ["etlt", "onnx", "reference"]
    verification = manifest["engine"]["verification"]
    assert verification["passed"] is False and verification["figures"]["cosine"] > 0.9999
    assert manifest["engine"]["rejectedPath"].endswith("bpnet_model.224.320.fp32.deploy.engine")


def test_engine_only_flags_without_engine_file_are_refused(
    model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys, "-m", str(model), "-k", SAMPLE_KEY, "--engine_backend", "onnxruntime"
    )
    assert code == 2
    assert "--engine_backend: only used when building an engine; add --engine_file" in err


def test_tensorrt_missing_fails_before_any_work(
    model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("TensorRT is installed here")
    code, _, err = run(
        capsys, "-m", str(model), "-k", SAMPLE_KEY, "--engine_file", str(model.parent / "e.engine")
    )
    assert code == 2
    assert "needs TensorRT and a GPU" in err and "--engine_backend onnxruntime" in err
    assert sorted(p.name for p in model.parent.iterdir()) == ["bpnet_model.tlt"]
