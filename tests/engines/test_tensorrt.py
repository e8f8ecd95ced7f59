"""The TensorRT backend on a real GPU. Runs only where `import tensorrt` works (the GPU pools)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

tensorrt = pytest.importorskip(
    "tensorrt", reason="TensorRT and a GPU exist only in the target pools"
)

from bodypose_exporter.stages.build import run_build  # noqa: E402
from tests.engines.conftest import Calibrated  # noqa: E402
from tests.support.builds import stage_request  # noqa: E402


def build(exported: Path, engine: Path, precision: str, **extra: object) -> dict[str, object]:
    result = run_build(
        stage_request(
            onnx=str(exported / "bpnet_model.onnx"),
            reference=str(exported / "reference.npz"),
            engine_file=str(engine),
            precision=precision,
            backend="tensorrt",
            max_batch_size=2,
            **extra,  # type: ignore[arg-type]
        )
    )
    return result.manifest


@pytest.mark.tensorrt
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_engine_matches_the_reference_and_says_where_it_runs(
    exported: Path, tmp_path: Path, precision: str
) -> None:
    engine = tmp_path / f"bpnet_model.224.320.{precision}.engine"
    manifest = build(exported, engine, precision)
    hardware = manifest["hardware"]
    assert isinstance(hardware, dict)
    assert hardware["gpuName"] and hardware["computeCapability"]
    assert hardware["tensorrtVersion"] == tensorrt.__version__ and hardware["cudaRuntimeVersion"]
    assert Path(f"{engine}.timing.cache").stat().st_size > 0
    assert json.loads((tmp_path / "manifest.json").read_text())["verification"]["passed"]


@pytest.mark.tensorrt
def test_second_build_reuses_the_timing_cache(exported: Path, tmp_path: Path) -> None:
    cache = tmp_path / "a10.timing.cache"
    first = build(exported, tmp_path / "one" / "e.engine", "fp16", timing_cache=str(cache))
    second = build(exported, tmp_path / "two" / "e.engine", "fp16", timing_cache=str(cache))
    # The builder records the cache's bytes before the build (0: none there) and after.
    before, details = first["build"], second["build"]
    assert isinstance(before, dict) and isinstance(details, dict)
    assert before["timingCache"]["loadedBytes"] == 0
    assert details["timingCache"]["loadedBytes"] == before["timingCache"]["savedBytes"] > 0


@pytest.mark.tensorrt
@pytest.mark.parametrize("strict", [False, True])
def test_int8_from_our_cal_bin(
    exported: Path, calibrated: Calibrated, tmp_path: Path, strict: bool
) -> None:
    manifest = run_build(
        stage_request(
            onnx=str(exported / "bpnet_model.onnx"),
            reference_images=str(calibrated.images),
            engine_file=str(tmp_path / "bpnet_model.224.320.int8.engine"),
            precision="int8",
            backend="tensorrt",
            calibration_cache=str(calibrated.cal_bin),
            strict_types=strict,
        )
    ).manifest
    assert manifest["build"]["int8Source"] == "calibration-cache"  # type: ignore[index]


@pytest.mark.tensorrt
def test_int8_calibrates_from_the_tensorfile_when_there_is_no_cache(
    exported: Path, sample_dir: Path, tmp_path: Path
) -> None:
    from bodypose_exporter.calibration.batches import ImageBatches
    from bodypose_exporter.calibration.images import list_images
    from bodypose_exporter.calibration.preprocess import Normalization
    from bodypose_exporter.calibration.tensorfile import TensorFileWriter

    tensorfile = tmp_path / "cal.tensorfile"
    images = list_images(sample_dir / "images").images
    with (
        ImageBatches(images, 1, (224, 320), Normalization(), 1) as batches,
        TensorFileWriter(tensorfile) as writer,
    ):
        for batch in batches.batches(4):
            writer.write(batch)
    cal = tmp_path / "written.cal.bin"
    manifest = run_build(
        stage_request(
            onnx=str(exported / "bpnet_model.onnx"),
            reference_images=str(sample_dir / "images"),
            engine_file=str(tmp_path / "out" / "e.engine"),
            precision="int8",
            backend="tensorrt",
            calibration_cache=str(cal),
            calibration_data=str(tensorfile),
            calibration_batches=4,
        )
    ).manifest
    assert manifest["build"]["int8Source"] == "tensorfile"  # type: ignore[index]
    assert cal.read_text().startswith("TRT-")


@pytest.mark.tensorrt
def test_int8_strongly_typed_from_the_qdq_model_with_its_record_and_configs(
    exported: Path, calibrated: Calibrated, tmp_path: Path
) -> None:
    given = tmp_path / "bpnet_model.224.320.int8.engine"
    manifest = run_build(
        stage_request(
            onnx=str(exported / "bpnet_model.onnx"),
            reference_images=str(calibrated.images),
            engine_file=str(given),
            precision="int8",
            backend="tensorrt",
            qdq_model=str(calibrated.qdq_model),
            calibration_cache=str(calibrated.cal_bin),
        )
    ).manifest
    build = manifest["build"]
    assert isinstance(build, dict)
    assert build["int8Route"] == "qdq" and build["stronglyTyped"]
    record = manifest["compatibility"]
    assert isinstance(record, dict) and record["tensorrtVersion"] == tensorrt.__version__
    cc = str(record["computeCapability"]).replace(".", "")
    engine = tmp_path / f"bpnet_model.224.320.int8.sm{cc}.trt{tensorrt.__version__}.engine"
    assert engine.is_file()
    assert (tmp_path / "triton" / "bpnet" / "1" / "model.plan").read_bytes() == engine.read_bytes()
    assert (
        "model-engine-file=" + engine.name in (tmp_path / "bodypose2d_pgie_config.txt").read_text()
    )
