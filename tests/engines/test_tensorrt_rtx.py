"""The tensorrt-rtx backend through `bpnet-build`: real TensorRT-RTX engines, built with no GPU.

Each build runs the CLI in a process of its own, as a build Job does. The
engine is NVIDIA's (TensorRT-RTX 1.7 from the package index); nothing here
can run it, so the manifest must say it was built and not run, with no
figure. The EPContext model beside an 8.6/8.9/12.x engine is checked by the
`onnx` checker and by ONNX Runtime, which must name the execution provider
it needs (this machine's ONNX Runtime has only the CPU provider).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from bodypose_exporter.convert.fidelity import read_verification_reference
from bodypose_exporter.convert.fp16 import write_fp16_model

BPNET_BUILD = Path(sys.executable).parent / "bpnet-build"
VERSION = "1.7.1.116"


def build(exported: Path, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BPNET_BUILD), "--onnx", str(exported / "bpnet_model.onnx"),
         "--reference", str(exported / "reference.npz"), "--engine_backend", "tensorrt-rtx",
         "--engine_file", str(out / "bpnet_model.224.320.fp32.engine"), *args],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.fixture(scope="module")
def fp16_model(exported: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    inputs, _ = read_verification_reference(exported / "reference.npz")
    out = tmp_path_factory.mktemp("fp16") / "bpnet_model.fp16.onnx"
    write_fp16_model(exported / "bpnet_model.onnx", out, inputs.astype(np.float32))
    return out


def test_an_fp32_engine_for_l4_is_built_recorded_and_not_run(
    exported: Path, tmp_path: Path
) -> None:
    done = build(exported, tmp_path, "--compute_capabilities", "8.9")
    assert done.returncode == 0, done.stderr[-3000:]
    engine = tmp_path / f"bpnet_model.224.320.fp32.sm89.trtrtx{VERSION}.engine"
    assert engine.read_bytes()[:4] == b"vtrt"  # TensorRT-RTX's serialized engine
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["compatibility"] == {
        "computeCapabilities": "8.9",
        "tensorrtRtxVersion": VERSION,
    }
    verification = manifest["verification"]
    assert verification["run"] is False and verification["figures"] == {}
    assert verification["notRunReason"].startswith("no GPU in this pod")
    assert f"verification not run: {verification['notRunReason']}" in done.stdout
    assert manifest["latency"] == {"measured": False, "reason": verification["notRunReason"]}
    kinds = [a["kind"] for a in manifest["artifacts"]]
    assert kinds == ["engine", "epcontext-model", "deepstream-config"]
    context = onnx.load(str(engine) + ".epcontext.onnx")
    onnx.checker.check_model(context)
    (node,) = context.graph.node
    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert (node.op_type, node.domain) == ("EPContext", "com.microsoft")
    assert attributes["embed_mode"] == 0 and attributes["ep_cache_context"] == engine.name.encode()
    assert attributes["hardware_architecture"] == b"89" and attributes["ep_sdk_version"] == b"10701"
    assert attributes["source"] == b"NvTensorRTRTXExecutionProvider"
    with pytest.raises(Exception, match="NvTensorRTRTXExecutionProvider"):
        ort.InferenceSession(str(engine) + ".epcontext.onnx", providers=["CPUExecutionProvider"])


def test_an_fp16_engine_for_t4_and_a100_comes_from_the_fp16_model(
    exported: Path, fp16_model: Path, tmp_path: Path
) -> None:
    done = build(
        exported, tmp_path, "--data_type", "fp16", "--fp16_model", str(fp16_model),
        "--compute_capabilities", "8.0,7.5",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["compatibility"]["computeCapabilities"] == "7.5,8.0"
    assert manifest["build"]["fp16Route"] == "strong" and manifest["inputs"]["fp16Model"]
    assert Path(manifest["artifacts"][0]["path"]).name == (
        f"bpnet_model.224.320.fp32.sm75_80.trtrtx{VERSION}.engine"
    )
    # ONNX Runtime's NvTensorRTRTX provider runs neither T4 nor A100: no EPContext model
    assert "epcontext-model" not in [a["kind"] for a in manifest["artifacts"]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--compute_capabilities", "9.0"),
         "--compute_capabilities 9.0: TensorRT-RTX builds for 7.5, 8.0, 8.6, 8.9, 12.0, 12.1 "
         "only (Hopper: TensorRT-RTX does not run there; build with tensorrt)"),
        ((), "--engine_backend tensorrt-rtx builds for named GPUs: give --compute_capabilities"),
        (("--compute_capabilities", "8.9", "--data_type", "int8"),
         "--data_type int8: TensorRT-RTX builds fp32 and fp16 engines (its INT8 quantizes GEMM "
         "weights only, not the convolutions' activations)"),
        (("--compute_capabilities", "8.9", "--data_type", "fp16"),
         "TensorRT-RTX builds strongly typed networks only: an fp16 engine is built from the "
         "FP16 model; pass --fp16_model"),
        (("--compute_capabilities", "eight"),
         "--compute_capabilities 'eight': give MAJOR.MINOR, e.g. 8.9"),
    ],
    ids=["hopper", "none-named", "int8", "fp16-without-model", "not-a-capability"],
)  # fmt: skip
def test_what_tensorrt_rtx_cannot_build_is_refused_saying_why(
    exported: Path, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    done = build(exported, tmp_path, *args)
    assert done.returncode == 2, done.stderr[-3000:]
    assert message in done.stderr, done.stderr[-3000:]
    assert not list(tmp_path.glob("*.engine"))
