"""The exported sample with and without `--sdk_compatible_model`, and Triton's own config parser."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

import pytest

from bodypose_exporter.stages.export import ExportRequest, InputDims, run_export
from tests.conftest import SAMPLE_KEY

HEIGHT, WIDTH = 224, 320


@pytest.fixture(scope="session", params=[False, True], ids=["plain", "sdk_compatible"])
def exported_model(
    request: pytest.FixtureRequest, sample_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("sdk" if request.param else "plain")
    shutil.copy(sample_dir / "bpnet_sample.tlt", out / "bpnet_model.tlt")
    run_export(
        ExportRequest(
            model=str(out / "bpnet_model.tlt"),
            key=SAMPLE_KEY,
            output=str(out / "bpnet_model.etlt"),
            dims=InputDims(HEIGHT, WIDTH, 3),
            sdk_compatible=bool(request.param),
        )
    )
    return out


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
