"""Triton and DeepStream configs written by a real build, parsed and checked against the model.

The Triton config is parsed with Triton's own `ModelConfig` message; every
field is compared with the bindings of the ONNX model (its declared inputs and
outputs, and what ONNX Runtime reports when it loads it). The DeepStream
config is parsed as the INI file nvinfer reads and each key compared with the
exported model, with and without `--sdk_compatible_model`.
"""

from __future__ import annotations

import configparser
import json
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from bodypose_exporter.cli.main import build_main
from bodypose_exporter.engines.registry import facts_of
from bodypose_exporter.serving import bindings as onnx_bindings
from bodypose_exporter.serving.bindings import Bindings
from bodypose_exporter.stages import serving_configs
from tests.conftest import SAMPLE_HEIGHT as HEIGHT
from tests.conftest import SAMPLE_WIDTH as WIDTH
from tests.support.serving import check_against_model, parse_triton


def run_build(exported: Path, engine: Path, *extra: str) -> dict[str, Any]:
    code = build_main(
        [
            "--onnx", str(exported / "bpnet_model.onnx"),
            "--reference", str(exported / "reference.npz"),
            "--engine_backend", "onnxruntime",
            "--engine_file", str(engine),
            "--max_batch_size", "4",
            *extra,
        ]
    )  # fmt: skip
    assert code == 0
    manifest: dict[str, Any] = json.loads((engine.parent / "manifest.json").read_text())
    return manifest


@dataclass(frozen=True)
class Built:
    """One build of an export, asked for configs where the user names them too."""

    exported: Path
    target: Path  # the artifact's directory: the configs beside it
    manifest: dict[str, Any]
    repository: Path  # --triton_repository
    deepstream: Path  # --deepstream_config


@pytest.fixture(scope="module")
def built(exported_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    """One build per export for the tests of both kinds of place (beside the artifact, and
    where asked): a build verifies and times its artifact, most of a test's minute."""
    root = tmp_path_factory.mktemp("built")
    target = root / "targets" / "cpu"
    repository, deepstream = root / "triton-models", root / "ds" / "pgie.txt"
    manifest = run_build(
        exported_model, target / "bpnet_model.224.320.fp32.engine",
        "--triton_repository", str(repository), "--deepstream_config", str(deepstream),
    )  # fmt: skip
    return Built(exported_model, target, manifest, repository, deepstream)


def test_a_build_writes_both_configs_beside_its_artifact_and_lists_them(
    built: Built, model_config_pb2: ModuleType
) -> None:
    exported_model, target, manifest = built.exported, built.target, built.manifest
    # The copies asked for elsewhere are the user's, not artifacts: the manifest lists
    # only what the build publishes beside the artifact.
    listed = {a["kind"]: a["path"] for a in manifest["artifacts"]}
    assert listed == {
        "engine": str(target / "bpnet_model.224.320.fp32.onnx"),
        "triton-config": str(target / "triton" / "bpnet" / "config.pbtxt"),
        "triton-model": str(target / "triton" / "bpnet" / "1" / "model.onnx"),
        "deepstream-config": str(target / "bodypose2d_pgie_config.txt"),
    }
    assert manifest["serving"] == {
        "tritonRepository": str(target / "triton"),
        "tritonModel": "bpnet",
        "tritonConfig": str(target / "triton" / "bpnet" / "config.pbtxt"),
        "deepstreamConfig": str(target / "bodypose2d_pgie_config.txt"),
    }
    config = parse_triton(Path(listed["triton-config"]).read_text(), model_config_pb2)
    assert config.name == "bpnet" and config.platform == "onnxruntime_onnx"
    assert config.default_model_filename == "model.onnx"
    assert [g.kind for g in config.instance_group] == [model_config_pb2.ModelInstanceGroup.KIND_CPU]
    check_against_model(config, Path(listed["triton-model"]), model_config_pb2, 4)
    assert Path(listed["triton-model"]).read_bytes() == Path(listed["engine"]).read_bytes()

    ini = configparser.ConfigParser()
    ini.read(listed["deepstream-config"])
    prop = ini["property"]
    real = onnx_bindings.read(exported_model / "bpnet_model.onnx")
    expected_outputs = [b.name for b in real.outputs]
    sdk = "conv2d_transpose_1/BiasAdd:0" in expected_outputs
    assert sorted(expected_outputs) == sorted(
        ["conv2d_transpose_1/BiasAdd:0" if sdk else "paf_out/BiasAdd:0", "heatmap_out/BiasAdd:0"]
    )
    assert prop["output-blob-names"].split(";") == expected_outputs
    assert prop["infer-dims"] == f"{HEIGHT};{WIDTH};3"
    assert prop["network-input-order"] == "1" and prop["network-mode"] == "0"
    assert prop["batch-size"] == "4"
    assert prop["net-scale-factor"] == "0.00390625" and prop["offsets"] == "128.0;128.0;128.0"
    for key, value in {
        "maintain-aspect-ratio": "1", "symmetric-padding": "1", "network-type": "100",
        "output-tensor-meta": "1",
    }.items():  # fmt: skip
        assert prop[key] == value
    # paths relative to the config: the ONNX two levels up in the export's prefix
    assert (target / prop["onnx-file"]).resolve() == (exported_model / "bpnet_model.onnx")
    assert "model-engine-file" not in prop  # no TensorRT engine on a CPU target
    assert "tlt-model-key" not in prop and "tlt-encoded-model" not in prop


def test_int8_configs_name_the_calibration_cache(
    tmp_path: Path, model_config_pb2: ModuleType
) -> None:
    from tests.engines.conftest import Calibrated  # noqa: F401 - the fixture's type

    bindings = _bindings()
    served = _served(tmp_path, bindings, "int8", "tensorrt", "8.6")
    config = served.nvinfer(str(tmp_path / "targets" / "a100" / "bodypose2d_pgie_config.txt"))
    keys = config.keys()
    assert keys["network-mode"] == "1"
    assert keys["int8-calib-file"] == "../../cal.bin"
    assert keys["model-engine-file"] == "bpnet_model.224.320.int8.sm86.trt10.8.0.43.engine"
    assert keys["onnx-file"] == "../../bpnet_model.onnx"


def _bindings() -> Bindings:
    from bodypose_exporter.serving.bindings import Binding

    float32 = 1
    return Bindings(
        (Binding("input_1:0", float32, (HEIGHT, WIDTH, 3)),),
        (
            Binding("paf_out/BiasAdd:0", float32, (HEIGHT // 8, WIDTH // 8, 38)),
            Binding("heatmap_out/BiasAdd:0", float32, (HEIGHT // 8, WIDTH // 8, 19)),
        ),
    )


def _served(
    root: Path, bindings: Bindings, precision: str, backend: str, cc: str | None
) -> serving_configs.Served:
    target = root / "targets" / f"sm{cc}"
    target.mkdir(parents=True, exist_ok=True)
    plan = (
        target
        / f"bpnet_model.224.320.{precision}.sm{(cc or '').replace('.', '')}.trt10.8.0.43.engine"
    )
    plan.write_bytes(f"a plan for {cc}".encode())
    published = root / "targets" / "a100" / "bpnet_model.224.320.int8.sm86.trt10.8.0.43.engine"
    return serving_configs.Served(
        facts=facts_of(backend), precision=precision, max_batch_size=8, bindings=bindings,
        artifact=plan, artifact_location=str(published),
        onnx_source=str(root / "bpnet_model.onnx"), cal_bin=str(root / "cal.bin"),
        compute_capability=cc,
    )  # fmt: skip


def test_gpu_targets_share_one_triton_model_by_compute_capability(
    tmp_path: Path, model_config_pb2: ModuleType
) -> None:
    repository = tmp_path / "models"
    bindings = _bindings()
    for cc in ("8.6", "7.5"):
        serving_configs.write_triton_repository(
            str(repository), _served(tmp_path, bindings, "fp16", "tensorrt", cc)
        )
    config = parse_triton((repository / "bpnet" / "config.pbtxt").read_text(), model_config_pb2)
    assert config.platform == "tensorrt_plan" and config.max_batch_size == 8
    assert dict(config.cc_model_filenames) == {"8.6": "model.sm86.plan", "7.5": "model.sm75.plan"}
    for cc, name in config.cc_model_filenames.items():
        assert (repository / "bpnet" / "1" / name).read_bytes() == f"a plan for {cc}".encode()
    assert [g.kind for g in config.instance_group] == [model_config_pb2.ModelInstanceGroup.KIND_GPU]
    assert [list(o.dims) for o in config.output] == [[28, 40, 38], [28, 40, 19]]


def test_a_repository_written_by_someone_else_is_refused(tmp_path: Path) -> None:
    from bodypose_exporter.errors import UserError

    foreign = tmp_path / "models" / "bpnet" / "config.pbtxt"
    foreign.parent.mkdir(parents=True)
    foreign.write_text('name: "bpnet"\nplatform: "tensorrt_plan"\n')
    with pytest.raises(UserError) as raised:
        serving_configs.write_triton_repository(
            str(tmp_path / "models"), _served(tmp_path, _bindings(), "fp16", "tensorrt", "8.6")
        )
    assert str(raised.value) == (
        f"--triton_repository: {foreign} exists and was not written by bodypose-export; choose "
        "another directory or remove it"
    )


def test_the_cli_writes_the_configs_where_asked(built: Built, model_config_pb2: ModuleType) -> None:
    repository, ds = built.repository, built.deepstream
    config = parse_triton((repository / "bpnet" / "config.pbtxt").read_text(), model_config_pb2)
    check_against_model(config, repository / "bpnet" / "1" / "model.onnx", model_config_pb2, 4)
    ini = configparser.ConfigParser()
    ini.read(ds)
    assert (ds.parent / ini["property"]["onnx-file"]).resolve() == (
        built.exported / "bpnet_model.onnx"
    )
