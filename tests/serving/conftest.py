"""The exported sample with and without `--sdk_compatible_model`, and Triton's own config parser."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import export_sample
from tests.support.conversion_memo import ConversionMemo
from tests.support.serving import load_model_config_pb2


@pytest.fixture(scope="session", params=[False, True], ids=["plain", "sdk_compatible"])
def exported_model(
    request: pytest.FixtureRequest,
    sample_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    conversion_memo: ConversionMemo,
) -> Path:
    if not request.param:
        return Path(request.getfixturevalue("exported_sample"))
    return export_sample(
        sample_dir, tmp_path_factory.mktemp("sdk"), conversion_memo, sdk_compatible=True
    )


@pytest.fixture(scope="session")
def model_config_pb2() -> ModuleType:
    return load_model_config_pb2()
