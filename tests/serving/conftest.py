"""The exported sample with and without `--sdk_compatible_model`, and Triton's own config parser."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import export_sample


@pytest.fixture(scope="session", params=[False, True], ids=["plain", "sdk_compatible"])
def exported_model(
    request: pytest.FixtureRequest, sample_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    if not request.param:
        return Path(request.getfixturevalue("exported_sample"))
    return export_sample(sample_dir, tmp_path_factory.mktemp("sdk"), sdk_compatible=True)


@pytest.fixture(scope="session")
def model_config_pb2() -> ModuleType:
    return load_model_config_pb2()


def load_model_config_pb2() -> ModuleType:
    """Triton's ModelConfig protobuf, as the `tritonclient` package ships it.

    Loaded by file: `tritonclient.grpc`'s package init needs grpcio, which
    only its client (not its config message) uses.
    """
    spec = importlib.util.find_spec("tritonclient")
    assert spec is not None and spec.submodule_search_locations
    path = Path(next(iter(spec.submodule_search_locations))) / "grpc" / "model_config_pb2.py"
    loader_spec = importlib.util.spec_from_file_location("triton_model_config_pb2", path)
    assert loader_spec is not None and loader_spec.loader is not None
    module = importlib.util.module_from_spec(loader_spec)
    loader_spec.loader.exec_module(module)
    return module
