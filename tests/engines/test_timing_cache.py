"""TensorRT timing caches kept one per GPU model and TensorRT version, shared by every build.

The operator gives each tensorrt build Job `--timing_cache_dir <output>/.timing-caches`; the
build stage names the file from the device it finds (`engines/trt/hardware.timing_cache_key`),
reads it before the build, lets the build merge into it and writes it back. Here the
stage runs for real against MinIO, through the TensorRT backend and its builder's plan,
with what only a GPU pod has stood in for (TensorRT cannot be installed here): the
`tensorrt` module (tests/engines/fake_tensorrt.py), the device the pod reads
(`hardware.describe`), the one step TensorRT builds in (`TensorRTBuilder._run`, replaced by
what Polygraphy's `EngineBytesFromNetwork` does with the cache file: combine what the build
timed with what the file held, save it back) and TensorRT's runtime (the "engine" the stand-in
writes is the ONNX model, which ONNX Runtime runs for the verification).
`test_tensorrt.py` builds for real where `import tensorrt` works.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bodypose_exporter.engines.ort.runner import OrtRunner
from bodypose_exporter.engines.trt import hardware
from bodypose_exporter.engines.trt.backend import TensorRTBackend
from bodypose_exporter.engines.trt.builder import BuildPlan, TensorRTBuilder
from bodypose_exporter.stages.build import run_build
from tests.conftest import S3Endpoint
from tests.engines import fake_tensorrt
from tests.support.builds import stage_request

A100 = {"gpuName": "NVIDIA A100-SXM4-40GB", "computeCapability": "8.0"}
T4 = {"gpuName": "Tesla T4", "computeCapability": "7.5"}


def test_the_key_names_the_gpu_model_and_the_tensorrt_version() -> None:
    key = hardware.timing_cache_key({**A100, "tensorrtVersion": "10.8.0.43"})
    assert key == "NVIDIA_A100-SXM4-40GB-sm8.0-trt10.8.0.43"
    keys = {
        key,
        hardware.timing_cache_key({**A100, "tensorrtVersion": "10.9.0.34"}),
        hardware.timing_cache_key({**T4, "tensorrtVersion": "10.8.0.43"}),
        # the same compute capability, another GPU model: its own timings
        hardware.timing_cache_key({**A100, "gpuName": "NVIDIA A30", "tensorrtVersion": "10.8"}),
    }
    assert len(keys) == 4
    assert all(k.replace(".", "").replace("-", "").replace("_", "").isalnum() for k in keys)


def _polygraphy_on_the_cache(
    self: TensorRTBuilder, trt: Any, plan: BuildPlan, *_: Any, calibrate_only: bool = False
) -> bytes:
    """What EngineBytesFromNetwork does with `save_timing_cache` (polygraphy/backend/trt/
    loader.py): the build's timings combined with those the file holds, saved back."""
    if plan.timing_cache is not None and not calibrate_only:
        held = plan.timing_cache.read_bytes().splitlines() if plan.timing_cache.exists() else []
        timed = f"{plan.model.name} {plan.precision} batch {plan.profile[2]}".encode()
        plan.timing_cache.write_bytes(b"\n".join(sorted({*held, timed})) + b"\n")
    return plan.model.read_bytes()


Pod = Callable[[dict[str, str], str], None]


@pytest.fixture
def gpu_pod(monkeypatch: pytest.MonkeyPatch) -> Pod:
    """`gpu_pod(device, tensorrt_version)`: this process as a build pod on that GPU."""
    monkeypatch.setattr(TensorRTBuilder, "_run", _polygraphy_on_the_cache)
    monkeypatch.setattr(TensorRTBackend, "load", lambda self, path: OrtRunner(path))

    def on(device: dict[str, str], version: str) -> None:
        monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt.module(version))
        described = {**device, "tensorrtVersion": version, "gpuMemoryBytes": 40 << 30,
                     "cudaRuntimeVersion": "12.8", "cudaDriverVersion": "12.8"}  # fmt: skip
        monkeypatch.setattr(hardware, "describe", lambda device=0: dict(described))

    return on


def _objects(s3: S3Endpoint, bucket: str, prefix: str) -> dict[str, bytes]:
    client = s3.client()
    listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {
        o["Key"].rpartition("/")[2]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
        for o in listed
    }


def _build(exported: Path, engine_file: str, batch: int = 1, **extra: Any) -> dict[str, Any]:
    result = run_build(
        stage_request(
            onnx=str(exported / "bpnet_model.onnx"),
            reference=str(exported / "reference.npz"),
            engine_file=engine_file,
            precision="fp32",
            backend="tensorrt",
            max_batch_size=batch,
            **extra,
        )
    )
    assert result.verdict.passed
    timing: dict[str, Any] = result.manifest["build"]["timingCache"]
    return timing


def test_one_cache_per_gpu_model_and_tensorrt_version_read_merged_and_written_back(
    exported: Path, s3_endpoint: S3Endpoint, s3_bucket: str, gpu_pod: Pod
) -> None:
    caches = f"s3://{s3_bucket}/out/.timing-caches"

    def engine(resource: str, target: str) -> str:
        return f"s3://{s3_bucket}/out/ml/{resource}/k/targets/{target}/bpnet_model.engine"

    a100 = "NVIDIA_A100-SXM4-40GB-sm8.0-trt10.8.0.43.cache"
    gpu_pod(A100, "10.8.0.43")
    first = _build(exported, engine("one", "a100"), timing_cache_dir=caches)
    held = _objects(s3_endpoint, s3_bucket, "out/.timing-caches/")
    assert list(held) == [a100]
    assert first == {"loadedBytes": 0, "savedBytes": len(held[a100])}
    assert held[a100] == b"bpnet_model.onnx fp32 batch 1\n"

    # Another resource's build on the same GPU model and TensorRT: it starts from the
    # cache the first one wrote, and writes back both builds' timings.
    second = _build(exported, engine("two", "gpu"), batch=2, timing_cache_dir=caches)
    assert second["loadedBytes"] == len(held[a100])
    merged = _objects(s3_endpoint, s3_bucket, "out/.timing-caches/")[a100]
    assert merged == b"bpnet_model.onnx fp32 batch 1\nbpnet_model.onnx fp32 batch 2\n"
    assert second["savedBytes"] == len(merged)

    # Another TensorRT version on the same GPU, and another GPU model: caches of their own,
    # the A100's left as it was.
    gpu_pod(A100, "10.9.0.34")
    assert _build(exported, engine("one", "a100-new"), timing_cache_dir=caches)["loadedBytes"] == 0
    gpu_pod(T4, "10.8.0.43")
    assert _build(exported, engine("one", "t4"), timing_cache_dir=caches)["loadedBytes"] == 0
    held = _objects(s3_endpoint, s3_bucket, "out/.timing-caches/")
    assert sorted(held) == [
        "NVIDIA_A100-SXM4-40GB-sm8.0-trt10.8.0.43.cache",
        "NVIDIA_A100-SXM4-40GB-sm8.0-trt10.9.0.34.cache",
        "Tesla_T4-sm7.5-trt10.8.0.43.cache",
    ]
    assert held[a100] == merged


def test_a_named_cache_wins_and_without_a_directory_it_is_kept_beside_the_engine(
    exported: Path, s3_endpoint: S3Endpoint, s3_bucket: str, gpu_pod: Pod, tmp_path: Path
) -> None:
    gpu_pod(A100, "10.8.0.43")
    caches = f"s3://{s3_bucket}/out/.timing-caches"
    named = tmp_path / "mine.cache"
    engine = f"s3://{s3_bucket}/out/ml/r/k/targets/a100/bpnet_model.engine"
    _build(exported, engine, timing_cache=str(named), timing_cache_dir=caches)
    assert named.read_bytes() == b"bpnet_model.onnx fp32 batch 1\n"
    assert _objects(s3_endpoint, s3_bucket, "out/.timing-caches/") == {}

    _build(exported, engine)
    beside = _objects(s3_endpoint, s3_bucket, "out/ml/r/k/targets/a100/")
    assert beside["bpnet_model.engine.timing.cache"] == b"bpnet_model.onnx fp32 batch 1\n"
