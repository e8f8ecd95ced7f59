"""The TensorRT backend on a real GPU. Runs only where `import tensorrt` works."""

from __future__ import annotations

from pathlib import Path

import pytest

tensorrt = pytest.importorskip(
    "tensorrt", reason="TensorRT and a GPU exist only in the target pools, not on CI"
)


@pytest.mark.tensorrt
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tensorrt_engine_matches_the_reference(
    exported: Path, tmp_path: Path, precision: str
) -> None:
    from bodypose_exporter.stages.build import BuildStageRequest, run_build

    manifest = run_build(
        BuildStageRequest(
            onnx=str(exported / "bpnet_model.onnx"),
            reference=str(exported / "reference.npz"),
            engine_file=str(tmp_path / f"bpnet_model.224.320.{precision}.engine"),
            precision=precision,
            backend="tensorrt",
            max_batch_size=2,
            timing_cache=str(tmp_path / "timing.cache"),
        )
    )
    assert manifest["hardware"]["computeCapability"]
    assert (tmp_path / "timing.cache").stat().st_size > 0
