"""Shared by the engine tests: the sample model exported at 224x320, and its int8 calibration."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import SAMPLE_HEIGHT as HEIGHT
from tests.conftest import SAMPLE_WIDTH as WIDTH


@pytest.fixture(scope="session")
def exported(exported_sample: Path) -> Path:
    return exported_sample


@dataclass(frozen=True)
class Calibrated:
    cal_bin: Path
    qdq_model: Path
    images: Path  # every sample image; the last ones were held back from calibration


@pytest.fixture(scope="session")
def calibrated(
    exported: Path, sample_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Calibrated:
    """cal.bin and the QDQ model of the exported sample, from 6 of its 8 sample images."""
    from bodypose_exporter.stages.local_calibration import CalibrationOptions, run_calibration

    out = tmp_path_factory.mktemp("calibrated")
    result = run_calibration(
        exported / "bpnet_model.onnx",
        CalibrationOptions(
            cache_file=out / "cal.bin",
            batches=6,
            batch_size=1,
            input_hw=(HEIGHT, WIDTH),
            image_dir=sample_dir / "images",
            held_back=0,
            progress=False,
        ),
        out,
    )
    assert result.qdq_model is not None
    return Calibrated(out / "cal.bin", result.qdq_model, sample_dir / "images")
