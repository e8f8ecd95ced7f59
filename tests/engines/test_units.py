"""Engine names, CPU description, gates and the backend registry, without a model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bodypose_exporter.engines.naming import engine_file_name, resolve_engine_file
from bodypose_exporter.engines.ort.hardware import parse_cpuinfo
from bodypose_exporter.engines.registry import backend_by_name
from bodypose_exporter.errors import UserError
from bodypose_exporter.verification.agreement_figures import agreement
from bodypose_exporter.verification.agreement_gates import VerificationError, enforce, judge

X86_CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512bw avx512_vnni amx_tile amx_int8
processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
"""
ARM_CPUINFO = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes asimddp sha512 sve i8mm bf16
"""


def test_engine_names_follow_taos_notebook(tmp_path: Path) -> None:
    assert engine_file_name(288, 384, "int8", False) == "bpnet_model.288.384.int8.engine"
    assert engine_file_name(288, 384, "int8", True) == "bpnet_model.288.384.int8.deploy.engine"
    assert resolve_engine_file("s3://b/p/", 224, 320, "fp16", False) == (
        "s3://b/p/bpnet_model.224.320.fp16.engine"
    )
    assert resolve_engine_file(str(tmp_path), 224, 320, "fp32", True) == str(
        tmp_path / "bpnet_model.224.320.fp32.deploy.engine"
    )
    assert resolve_engine_file(str(tmp_path / "mine.plan"), 224, 320, "fp32", False) == str(
        tmp_path / "mine.plan"
    )


def test_an_artifact_built_as_another_precision_is_named_for_it() -> None:
    """The precision part of the name is what the artifact computes in (ONNX Runtime builds
    fp16 as the FP32 graph); a name without it, and a backend that builds what it is asked,
    keep theirs."""
    from bodypose_exporter.engines.naming import artifact_file_name
    from bodypose_exporter.engines.ort.facts import FACTS as ORT
    from bodypose_exporter.engines.trt.facts import FACTS as TRT

    given = "s3://b/p/targets/cpu/i/bpnet_model.320.448.fp16.onnx"
    assert artifact_file_name(given, ORT, None, "fp16") == (
        "s3://b/p/targets/cpu/i/bpnet_model.320.448.fp32.onnx"
    )
    assert artifact_file_name("out/bpnet_model.320.448.fp16.deploy.engine", ORT, None,
                              "fp16") == "out/bpnet_model.320.448.fp32.deploy.onnx"  # fmt: skip
    assert artifact_file_name("out/mine.engine", ORT, None, "fp16") == "out/mine.onnx"
    assert artifact_file_name("out/fp16/m.int8.onnx", ORT, None, "int8") == "out/fp16/m.int8.onnx"
    assert artifact_file_name("out/m.fp16.engine", TRT, None, "fp16") == "out/m.fp16.engine"
    assert ORT.built_precision("fp16")[0] == "fp32"
    assert TRT.built_precision("fp16") == ("fp16", None)


def test_cpu_model_and_instruction_sets_from_cpuinfo() -> None:
    model, flags = parse_cpuinfo(X86_CPUINFO)
    assert model == "Intel(R) Xeon(R) Platinum 8480+"
    assert {"avx512_vnni", "amx_int8", "avx2"} <= flags
    _, arm = parse_cpuinfo(ARM_CPUINFO)
    assert {"asimddp", "i8mm"} <= arm


def test_this_machine_is_described() -> None:
    from bodypose_exporter.engines.ort.hardware import describe as cpu_description

    described = cpu_description()
    assert described["cpuModel"] and described["logicalCpus"] >= 1
    assert isinstance(described["int8DotProduct"], bool)


def test_gates_pass_fail_and_name_the_flag() -> None:
    ok = judge("fp16", {"maxAbsDiff": 0.01, "cosine": 0.9995, "peakAgreement": 0.97}, {})
    assert ok.passed and ok.gates == {"maxAbsDiff": 0.05, "cosine": 0.999, "peakAgreement": 0.95}
    bad = judge("int8", {"maxAbsDiff": 3.0, "cosine": 0.95, "peakAgreement": 0.9}, {})
    assert bad.failures == ("cosine 0.95 < gate 0.98 (--min_cosine)",)  # no abs gate for int8
    with pytest.raises(VerificationError) as raised:
        enforce(bad, "tensorrt")
    message = str(raised.value)
    assert message.startswith("the int8 tensorrt engine disagrees with the FP32 reference")
    assert "too little calibration data" in message and raised.value.exit_code == 3
    overridden = judge("int8", {"cosine": 0.95}, {"cosine": 0.9, "peakAgreement": None})
    assert overridden.passed and overridden.gates["cosine"] == 0.9


def test_figures_of_identical_and_of_scrambled_outputs() -> None:
    rng = np.random.default_rng(0)
    heat = rng.random((2, 6, 8, 19)).astype(np.float32)
    paf = rng.normal(size=(2, 6, 8, 38)).astype(np.float32)
    ref = {"heatmap_out/BiasAdd:0": heat, "paf_out/BiasAdd:0": paf}
    same = agreement(ref, ref)
    assert same["maxAbsDiff"] == 0 and same["cosine"] == pytest.approx(1.0)
    assert same["peakAgreement"] == 1.0 and same["peakArgmaxMatch"] == 1.0
    flipped = {k: np.flip(v, axis=(1, 2)).copy() for k, v in ref.items()}
    worse = agreement(ref, flipped)
    assert worse["cosine"] < 0.99 and worse["peakArgmaxMatch"] < 0.5


def test_unknown_backend_is_a_user_error() -> None:
    with pytest.raises(UserError, match="unknown engine backend 'openvino'"):
        backend_by_name("openvino")
