"""The tensorrt-rtx backend through `bpnet-build`: real TensorRT-RTX engines, built with no GPU.

Each build runs the CLI in a process of its own, as a build Job does. The
engine is NVIDIA's (TensorRT-RTX 1.7 from the package index); nothing here
can run it, so the manifest must say it was built and not run, with no
figure and no `passed`. Whether it runs is the CUDA driver's answer
(`engines/trt_rtx/devices.py`): here there is no libcuda.so.1 at all; a
stand-in driver library compiled from `fake_libcuda.c` presents a driver
with no device, and devices of chosen compute capabilities. The EPContext
model beside an 8.6/8.9/12.x engine is checked by the `onnx` checker and by
ONNX Runtime, which must name the execution provider it needs (this
machine's ONNX Runtime has only the CPU provider).
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from bodypose_exporter.convert.fidelity import read_verification_reference
from bodypose_exporter.convert.fp16 import write_fp16_model
from bodypose_exporter.engines.trt_rtx import devices, hardware

BPNET = Path(sys.executable).parent / "bpnet"
BPNET_BUILD = Path(sys.executable).parent / "bpnet-build"
VERSION = "1.7.1.116"
NO_LIBCUDA = "the CUDA driver library libcuda.so.1 cannot be loaded"


def build(
    exported: Path, out: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BPNET_BUILD), "--onnx", str(exported / "bpnet_model.onnx"),
         "--reference", str(exported / "reference.npz"), "--engine_backend", "tensorrt-rtx",
         "--engine_file", str(out / "bpnet_model.224.320.fp32.engine"), *args],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip


@pytest.fixture(scope="module")
def fake_libcuda(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`fake_libcuda.c` compiled to a `libcuda.so.1` (its folder is the one to search)."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build the stand-in CUDA driver library with")
    out = tmp_path_factory.mktemp("libcuda") / devices.LIBRARY
    source = Path(__file__).with_name("fake_libcuda.c")
    subprocess.run([compiler, "-shared", "-fPIC", "-Wall", "-Werror", "-o", str(out),
                    str(source)], check=True)  # fmt: skip
    return out


def absent(_: str) -> Any:
    """The real loader, asked for a library that is not there (dlopen's own error)."""
    return ctypes.CDLL("/nonexistent/libcuda.so.1")


@pytest.mark.parametrize(
    ("driver", "built_for", "runs_on", "reason"),
    [
        (None, ("8.9",), None,
         "no GPU in this pod: the CUDA driver library libcuda.so.1 cannot be loaded "
         "(/nonexistent/libcuda.so.1: cannot open shared object file: No such file or "
         "directory); TensorRT-RTX built the engine ahead of time for 8.9, nothing ran it"),
        ({"FAKE_CUDA_INIT": "100"}, ("8.9",), None,
         "no GPU in this pod: the CUDA driver (libcuda.so.1): cuInit returned "
         "CUDA_ERROR_NO_DEVICE (100); TensorRT-RTX built the engine ahead of time for 8.9, "
         "nothing ran it"),
        ({"FAKE_CUDA_DEVICES": ""}, ("8.9",), None,
         "no GPU in this pod: the CUDA driver (libcuda.so.1) shows no device; TensorRT-RTX "
         "built the engine ahead of time for 8.9, nothing ran it"),
        ({"FAKE_CUDA_DEVICES": "8.9=NVIDIA L4"}, ("8.9",), "NVIDIA L4", None),
        ({"FAKE_CUDA_DEVICES": "8.6=NVIDIA A10"}, ("8.9",), None,
         "this pod's GPU NVIDIA A10 (compute capability 8.6) is not one the engine was built "
         "for (8.9): built, not run"),
        ({"FAKE_CUDA_DEVICES": "7.5=Tesla T4"}, ("7.5", "8.0"), "Tesla T4", None),
        # The runtime runs on device 0: a matching device 1 does not make it run.
        ({"FAKE_CUDA_DEVICES": "8.6=NVIDIA A10;8.9=NVIDIA L4"}, ("8.9",), None,
         "this pod's GPU NVIDIA A10 (compute capability 8.6) is not one the engine was built "
         "for (8.9): built, not run"),
    ],
    ids=["no-libcuda", "cuinit-no-device", "zero-devices", "l4-for-8.9", "a10-for-8.9",
         "t4-for-7.5-and-8.0", "device-0-decides"],
)  # fmt: skip
def test_the_engine_runs_only_on_a_cuda_device_the_pod_opens_of_a_capability_built_for(
    fake_libcuda: Path,
    monkeypatch: pytest.MonkeyPatch,
    driver: dict[str, str] | None,
    built_for: tuple[str, ...],
    runs_on: str | None,
    reason: str | None,
) -> None:
    monkeypatch.delenv("FAKE_CUDA_INIT", raising=False)
    for name, value in (driver or {}).items():
        monkeypatch.setenv(name, value)

    def stand_in(name: str) -> Any:
        assert name == "libcuda.so.1"  # what the driver's library is called, and loaded as
        return ctypes.CDLL(str(fake_libcuda))

    found = devices.probe(absent if driver is None else stand_in)
    decision = hardware.run_decision(found, built_for)
    assert decision.not_run == reason
    assert (decision.device.name if decision.device else None) == runs_on
    if runs_on is not None:
        assert decision.device is not None and decision.device.capability in built_for


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
    # Built and not run, in those words: no figure, no gate, and never `passed`.
    assert verification["run"] is False and verification["figures"] == {}
    assert verification["outcome"] == "built, not run" and "passed" not in verification
    # This machine has no CUDA driver at all: the reason names what is missing.
    assert verification["notRunReason"].startswith(f"no GPU in this pod: {NO_LIBCUDA} (")
    assert verification["notRunReason"].endswith(
        "TensorRT-RTX built the engine ahead of time for 8.9, nothing ran it"
    )
    assert manifest["hardware"]["cuda"]["devices"] == []
    assert manifest["hardware"]["notRunReason"] == verification["notRunReason"]
    assert f"verification not run: {verification['notRunReason']}" in done.stdout
    inspected = subprocess.run([str(BPNET), "inspect", str(tmp_path / "manifest.json")],
                               capture_output=True, text=True, check=True)  # fmt: skip
    assert f"verification not run: {verification['notRunReason']}" in inspected.stdout
    assert "passed" not in inspected.stdout and "FAILED" not in inspected.stdout
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


def test_a_build_pod_whose_gpu_is_of_another_kind_publishes_the_engine_not_run(
    exported: Path, fake_libcuda: Path, tmp_path: Path
) -> None:
    """An A10 (8.6) pod building for the l4 pool (8.9): the driver (the stand-in, found on
    the library path as the real one is) shows the device, and the engine is not run."""
    env = {**os.environ, "LD_LIBRARY_PATH": str(fake_libcuda.parent),
           "FAKE_CUDA_DEVICES": "8.6=NVIDIA A10"}  # fmt: skip
    done = build(exported, tmp_path, "--compute_capabilities", "8.9", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    reason = ("this pod's GPU NVIDIA A10 (compute capability 8.6) is not one the engine was "
              "built for (8.9): built, not run")  # fmt: skip
    assert manifest["verification"] == {
        "precision": "fp32", "figures": {}, "gates": {}, "run": False,
        "outcome": "built, not run", "notRunReason": reason,
        "reference": "reference.npz (2 inputs)",
    }  # fmt: skip
    assert manifest["hardware"]["cuda"] == {
        "devices": [{"ordinal": 0, "name": "NVIDIA A10", "computeCapability": "8.6"}]
    }
    assert "gpuName" not in manifest["hardware"]  # nothing ran on it
    assert manifest["latency"] == {"measured": False, "reason": reason}
    assert f"verification not run: {reason}" in done.stdout


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
