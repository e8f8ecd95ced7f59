"""An exported sample model (224x320) shared by the engine tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bodypose_exporter.stages.export import ExportRequest, InputDims, run_export
from tests.conftest import SAMPLE_KEY


@pytest.fixture(scope="session")
def exported(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("exported")
    shutil.copy(sample_dir / "bpnet_sample.tlt", out / "bpnet_model.tlt")
    run_export(
        ExportRequest(
            model=str(out / "bpnet_model.tlt"),
            key=SAMPLE_KEY,
            output=str(out / "bpnet_model.etlt"),
            dims=InputDims(224, 320, 3),
        )
    )
    return out
