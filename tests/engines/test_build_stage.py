"""`bpnet-build`: the ONNX Runtime backend for real, TensorRT where it exists, and the gates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bodypose_exporter.build_cli import main
from bodypose_exporter.convert.fidelity import read_reference, write_reference


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_onnxruntime_build_is_verified_and_described(
    exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = tmp_path / "cpu" / "bpnet_model.224.320.fp32.engine"
    code, out, err = run(
        capsys,
        "--onnx", str(exported / "bpnet_model.onnx"),
        "--reference", str(exported / "reference.npz"),
        "--engine_backend", "onnxruntime",
        "--engine_file", str(engine),
        "--max_batch_size", "2",
    )  # fmt: skip
    assert code == 0, err
    manifest = json.loads((engine.parent / "manifest.json").read_text())
    assert manifest["artifacts"][0]["path"] == str(engine)
    figures = manifest["verification"]["figures"]
    assert figures["maxAbsDiff"] < 1e-4 and figures["cosine"] > 0.9999
    assert figures["peakAgreement"] == 1.0
    assert manifest["hardware"]["onnxruntimeVersion"]
    assert "verification maxAbsDiff" in out


def test_tensorrt_backend_says_where_it_runs(
    exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("TensorRT is installed here: tests/engines/test_tensorrt.py covers it")
    code, _, err = run(
        capsys,
        "--onnx", str(exported / "bpnet_model.onnx"),
        "--reference", str(exported / "reference.npz"),
        "--engine_file", str(tmp_path / "x.engine"),
    )  # fmt: skip
    assert code == 2
    assert "needs TensorRT and a GPU" in err and "--engine_backend onnxruntime" in err
    assert not (tmp_path / "x.engine").exists()


def test_disagreeing_engine_fails_with_figure_and_gate(
    exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs, outputs = read_reference(exported / "reference.npz")
    # A reference the model cannot match: its outputs scrambled along the width.
    wrong = {name: np.flip(value, axis=2).copy() for name, value in outputs.items()}
    write_reference(tmp_path / "wrong.npz", inputs, wrong)
    engine = tmp_path / "out" / "e.engine"
    code, _, err = run(
        capsys,
        "--onnx", str(exported / "bpnet_model.onnx"),
        "--reference", str(tmp_path / "wrong.npz"),
        "--engine_backend", "onnxruntime",
        "--data_type", "int8",
        "--qdq_model", str(exported / "bpnet_model.onnx"),
        "--engine_file", str(engine),
    )  # fmt: skip
    assert code == 3
    assert "the int8 engine disagrees with the FP32 reference" in err
    assert "gate 0.98" in err and "too little calibration data" in err
    assert not engine.parent.exists() or list(engine.parent.iterdir()) == []


def test_int8_onnxruntime_needs_the_qdq_model(
    exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys,
        "--onnx", str(exported / "bpnet_model.onnx"),
        "--reference", str(exported / "reference.npz"),
        "--engine_backend", "onnxruntime",
        "--data_type", "int8",
        "--engine_file", str(tmp_path / "e.engine"),
    )  # fmt: skip
    assert code == 2
    assert "needs the QDQ model" in err
