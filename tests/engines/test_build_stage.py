"""`bpnet-build` with the ONNX Runtime backend for real, and what happens when a gate fails."""

from __future__ import annotations

import configparser
import json
from pathlib import Path

import numpy as np
import pytest

from bodypose_exporter.cli.main import build_main as main
from bodypose_exporter.cli.main import export_main
from bodypose_exporter.convert.fidelity import (
    read_verification_reference,
    write_verification_reference,
)
from bodypose_exporter.engines.ort import hardware
from tests.conftest import FIGURES, IN_PROCESS_LATENCY_BUDGET_SECONDS
from tests.engines.conftest import Calibrated
from tests.support.serving import check_against_model, load_model_config_pb2, parse_triton


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def ort_build(exported: Path, engine: Path, *extra: str) -> list[str]:
    return [
        "--onnx", str(exported / "bpnet_model.onnx"),
        "--reference", str(exported / "reference.npz"),
        "--engine_backend", "onnxruntime",
        "--engine_file", str(engine),
        *extra,
    ]  # fmt: skip


def test_fp32_artifact_is_verified_and_described(
    exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    asked = tmp_path / "cpu" / "bpnet_model.224.320.fp32.engine"
    code, out, err = run(
        capsys, *ort_build(exported, asked, "--max_batch_size", "2", "--latency_budget", "1.5")
    )
    assert code == 0, err
    # an ONNX Runtime artifact is an ONNX model: named .onnx, and the manifest says so
    engine = asked.with_suffix(".onnx")
    assert engine.is_file() and not asked.exists()
    manifest = json.loads((engine.parent / "manifest.json").read_text())
    assert manifest["artifacts"][0]["path"] == str(engine)
    assert manifest["artifacts"][0]["runtime"] == "onnxruntime"
    assert manifest["runtime"] == "ONNX Runtime"
    verification = manifest["verification"]
    assert verification["passed"] and verification["gates"]["cosine"] == 0.9999
    figures = verification["figures"]
    assert figures["maxAbsDiff"] < 1e-4 and figures["cosine"] > 0.99999
    assert figures["peakAgreement"] == 1.0
    assert manifest["hardware"]["onnxruntimeVersion"] and manifest["hardware"]["cpuModel"]
    assert manifest["build"]["optimizationLevel"] == "ORT_ENABLE_EXTENDED"
    assert "verification maxAbsDiff" in out and "passed" in out
    # Timed on this machine after it passed: batch 1 and --max_batch_size, the engine alone.
    latency = manifest["latency"]
    assert (latency["batch1"]["batch"], latency["batchMax"]["batch"]) == (1, 2)
    assert latency["clock"] == "wall" and latency["warmup"] == 2
    assert latency["budgetSeconds"] == 1.5  # --latency_budget
    assert latency["includes"] == ["inference", "output conversion"]
    assert all(5 <= latency[k]["runs"] <= 40 for k in ("batch1", "batchMax"))
    for timed in (latency["batch1"], latency["batchMax"]):
        assert timed["p10Ms"] <= timed["medianMs"] <= timed["p90Ms"]
        assert timed["warmupRuns"] >= latency["warmup"] and isinstance(timed["settled"], bool)
    assert latency["threads"] == latency["cpuBudget"]["threads"] >= 1
    assert latency["threadsFrom"].startswith("affinity ")
    assert latency["device"] == manifest["hardware"]["cpuModel"]
    for timed in (latency["batch1"], latency["batchMax"]):
        assert 0 < timed["medianMs"] <= timed["p90Ms"] and timed["imagesPerSecond"] > 0
    FIGURES.append(
        f"engines: ORT fp32 artifact vs FP32 reference, maxAbsDiff {figures['maxAbsDiff']:.2e}; "
        f"latency at 224x320 batch 1 {latency['batch1']['medianMs']:.1f} ms median "
        f"({latency['threads']} threads, {latency['device']})"
    )


def test_fp16_on_a_cpu_target_is_the_fp32_graph_and_says_so(
    exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ONNX Runtime's CPU provider has no FP16 convolutions, so its fp16 artifact is the FP32
    graph: named, recorded and held to the gates of what it is, the request and the reason
    beside it."""
    engine = tmp_path / "bpnet_model.224.320.fp16.engine"
    code, _, err = run(capsys, *ort_build(exported, engine, "--data_type", "fp16"))
    assert code == 0, err
    written = tmp_path / "bpnet_model.224.320.fp32.onnx"
    assert written.is_file() and not engine.with_suffix(".onnx").exists()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["artifacts"][0]["path"] == str(written)
    assert manifest["precision"] == "fp32" and manifest["requestedPrecision"] == "fp16"
    assert "no FP16 convolution kernels" in manifest["precisionReason"]
    assert manifest["build"]["effectivePrecision"] == "fp32"
    assert manifest["verification"]["precision"] == "fp32"
    assert manifest["verification"]["gates"]["cosine"] == 0.9999  # fp32's


@pytest.mark.parametrize("source", ["qdq", "cal.bin"])
def test_int8_artifact_passes_its_gate_and_serves_the_model_it_was_built_from(
    exported: Path,
    calibrated: Calibrated,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    source: str,
) -> None:
    model_config_pb2 = load_model_config_pb2()
    engine = tmp_path / "bpnet_model.224.320.int8.engine"
    int8 = (
        ["--qdq_model", str(calibrated.qdq_model)]
        if source == "qdq"
        else ["--cal_cache_file", str(calibrated.cal_bin)]
    )
    code, _, err = run(
        capsys,
        "--onnx", str(exported / "bpnet_model.onnx"),
        "--reference_images", str(calibrated.images),
        "--engine_backend", "onnxruntime",
        "--engine_file", str(engine),
        "--data_type", "int8",
        *int8,
    )  # fmt: skip
    assert code == 0, err
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["build"]["int8Source"] == ("qdq" if source == "qdq" else "calibration-cache")
    # Built from the QDQ model, the artifact is served as one (`stages.build_engine.graph_of`
    # reads the details' int8Source, which the ONNX Runtime builder once recorded as `source`,
    # and `stages.serving_configs.for_engine` serves `Graph.QDQ` from it): the
    # DeepStream config names the QDQ model and the Triton config holds its bindings; built
    # from cal.bin, the FP32 model and cal.bin.
    served_from = calibrated.qdq_model if source == "qdq" else exported / "bpnet_model.onnx"
    ini = configparser.ConfigParser()
    ini.read(manifest["serving"]["deepstreamConfig"])
    prop = ini["property"]
    assert (tmp_path / prop["onnx-file"]).resolve() == served_from.resolve()
    if source == "qdq":
        assert "int8-calib-file" not in prop
    else:
        assert (tmp_path / prop["int8-calib-file"]).resolve() == calibrated.cal_bin.resolve()
    triton = parse_triton(Path(manifest["serving"]["tritonConfig"]).read_text(), model_config_pb2)
    check_against_model(triton, served_from, model_config_pb2, 1)
    cpu = manifest["hardware"]["int8InstructionSet"]
    assert manifest["compatibility"]["instructionSet"] == cpu
    assert manifest["compatibility"]["weights"] == hardware.int8_weights(cpu)
    figures = manifest["verification"]["figures"]
    assert figures["cosine"] >= 0.98 and figures["peakAgreement"] >= 0.85
    assert "8 images" in manifest["verification"]["reference"]
    # Timed against the FP32 model on this CPU; a warning exactly where int8 does not pay
    # (no VNNI), with both figures: which one this machine gives is not the test's business.
    speedup = manifest["int8Speedup"]
    assert speedup["ratio"] == round(speedup["fp32MedianMs"] / speedup["int8MedianMs"], 2)
    assert speedup["runs"] >= 5 and set(speedup["spreadPct"]) == {"int8", "fp32"}
    # No --latency_budget: the default (BUDGET_SECONDS, which tests/conftest.py lowers for
    # the builds made in this process), recorded with both timings.
    assert (
        speedup["budgetSeconds"]
        == manifest["latency"]["budgetSeconds"]
        == (IN_PROCESS_LATENCY_BUDGET_SECONDS)
    )
    if speedup["ratio"] < 1.1:
        (warning,) = manifest["warnings"]
        assert (
            f"int8 {speedup['int8MedianMs']:.2f} ms, fp32 {speedup['fp32MedianMs']:.2f}" in warning
        )
    else:
        assert "warnings" not in manifest
    FIGURES.append(
        f"engines: ORT int8 ({source}) vs FP32 on 8 sample images at 224x320: cosine "
        f"{figures['cosine']:.4f} (worst image {figures['cosineWorstImage']:.4f}), peaks "
        f"{figures['peakAgreement']:.3f}, maxAbsDiff {figures['maxAbsDiff']:.3g}"
    )


def test_int8_without_calibration_is_refused(
    exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = tmp_path / "e.engine"
    code, _, err = run(capsys, *ort_build(exported, engine, "--data_type", "int8"))
    assert code == 2
    assert "needs the QDQ model" in err and "--cal_cache_file" in err
    assert not engine.exists()


def test_a_disagreeing_engine_is_not_published_but_its_figures_are(
    exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs, outputs = read_verification_reference(exported / "reference.npz")
    # A reference the model cannot match: its outputs mirrored left to right.
    wrong = {name: np.flip(value, axis=2).copy() for name, value in outputs.items()}
    write_verification_reference(tmp_path / "wrong.npz", inputs, wrong)
    engine = tmp_path / "out" / "bpnet_model.224.320.fp32.engine"
    code, _, err = run(
        capsys,
        "--onnx", str(exported / "bpnet_model.onnx"),
        "--reference", str(tmp_path / "wrong.npz"),
        "--engine_backend", "onnxruntime",
        "--engine_file", str(engine),
    )  # fmt: skip
    assert code == 3
    assert "the fp32 onnxruntime engine disagrees with the FP32 reference" in err
    assert "gate 0.9999 (--min_cosine)" in err and "verification maxAbsDiff" in err
    assert sorted(p.name for p in engine.parent.iterdir()) == ["manifest.rejected.json"]
    rejected = json.loads((engine.parent / "manifest.rejected.json").read_text())
    assert rejected["verification"]["passed"] is False
    assert rejected["artifacts"] == [] and rejected["verification"]["failures"]


def test_int8_failure_names_the_calibration_causes(
    exported: Path, calibrated: Calibrated, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = tmp_path / "e.engine"
    code, _, err = run(
        capsys,
        *ort_build(exported, engine, "--data_type", "int8"),
        "--qdq_model", str(calibrated.qdq_model),
        "--min_cosine", "1.01",
    )  # fmt: skip
    assert code == 3
    assert "< gate 1.01 (--min_cosine)" in err
    assert "too little calibration data" in err and "do not represent" in err


def test_tensorrt_backend_says_where_it_runs(
    exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("onnxruntime")
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
    assert list(tmp_path.iterdir()) == []


def test_a_cpu_class_other_than_this_nodes_is_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The class the operator read from the pool's labels is not this node's: exit 2, both
    classes named, nothing downloaded (the --onnx named does not even exist)."""
    here = hardware.describe()["int8InstructionSet"]
    other = next(
        c for c in hardware.INT8_CLASSES if c != here and c not in hardware.BASELINE_CLASSES
    )
    engine = tmp_path / "bpnet_model.224.320.int8.engine"
    code, _, err = run(
        capsys,
        *ort_build(tmp_path / "absent", engine, "--data_type", "int8"),
        "--cal_cache_file", str(tmp_path / "cal.bin"),
        "--int8_instruction_set", other,
    )  # fmt: skip
    assert code == 2
    assert f"--int8_instruction_set {other}: this node's CPU is {here}, not {other}" in err
    assert "Node Feature Discovery labels disagree with this node's /proc/cpuinfo" in err
    assert "does not exist" not in err and list(tmp_path.iterdir()) == []


def test_a_flag_of_another_backends_group_is_refused_not_ignored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each backend owns its flags (`engines/<backend>/args.py`); one given to another
    backend's build would be silently dropped: exit 2 before any work, the owner named."""
    engine = tmp_path / "e.engine"
    for flags, owner in (
        (("--expected_gpu_product", "NVIDIA-A10"), "tensorrt"),
        (("--compute_capabilities", "8.9"), "tensorrt-rtx"),
    ):
        code, _, err = run(capsys, *ort_build(tmp_path / "absent", engine, *flags))
        assert code == 2, flags
        assert f"{flags[0]}: only {owner} builds take it; this build is onnxruntime" in err
        assert list(tmp_path.iterdir()) == []


def test_the_cpu_class_flag_is_refused_where_it_would_do_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = tmp_path / "e.engine"
    code, _, err = run(capsys, *ort_build(tmp_path, engine, "--int8_instruction_set", "x86"))
    assert code == 2
    assert "--int8_instruction_set: only used with --data_type int8; this build is fp32" in err
    with pytest.raises(SystemExit) as exited:
        run(capsys, *ort_build(tmp_path, engine, "--int8_instruction_set", "x86-sse"))
    assert exited.value.code == 2
    assert "argument --int8_instruction_set: invalid choice: 'x86-sse'" in capsys.readouterr().err
    # bpnet-export takes it with the engine it builds, like every engine flag.
    code = export_main(["-m", str(tmp_path / "m.tlt"), "--int8_instruction_set", "x86"])
    assert code == 2
    assert "--int8_instruction_set: only used when building an engine; add --engine_file" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize("value", ["0", "-2", "soon", "inf", "nan"])
def test_a_latency_budget_that_is_no_number_of_seconds_above_zero_is_refused(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = tmp_path / "e.engine"
    with pytest.raises(SystemExit) as exited:
        run(capsys, *ort_build(tmp_path, engine, "--latency_budget", value))
    assert exited.value.code == 2
    assert (
        f"bpnet-build: error: argument --latency_budget: a number of seconds above 0, "
        f"got {value!r}" in capsys.readouterr().err
    )
    assert list(tmp_path.iterdir()) == []
