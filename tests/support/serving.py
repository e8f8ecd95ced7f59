"""Triton's ModelConfig message, and a Triton config checked against the ONNX model it serves.

Used by the serving tests (a build's configs) and the end-to-end operator flow
(the configs a target's Job published).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import onnxruntime as ort
from google.protobuf import text_format

from tests.conftest import SAMPLE_HEIGHT as HEIGHT
from tests.conftest import SAMPLE_WIDTH as WIDTH


def parse_triton(text: str, pb2: ModuleType) -> Any:
    return text_format.Parse(text, pb2.ModelConfig())


def check_against_model(config: Any, model: Path, pb2: ModuleType, max_batch: int) -> None:
    """Every field of the Triton config against the ONNX model's real bindings."""
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (real_input,) = session.get_inputs()
    assert config.max_batch_size == max_batch
    (given,) = config.input
    assert given.name == real_input.name == "input_1:0"
    assert given.format == pb2.ModelInput.FORMAT_NHWC
    assert list(given.dims) == [HEIGHT, WIDTH, 3] == list(real_input.shape[1:])
    assert given.data_type == pb2.TYPE_FP32 and real_input.type == "tensor(float)"
    real_outputs = {o.name: o for o in session.get_outputs()}
    assert sorted(o.name for o in config.output) == sorted(real_outputs)
    for output in config.output:
        assert list(output.dims) == list(real_outputs[output.name].shape[1:])
        assert output.data_type == pb2.TYPE_FP32
    assert config.HasField("dynamic_batching")


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
