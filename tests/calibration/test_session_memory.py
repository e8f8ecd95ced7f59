"""What the calibration collector does for its peak memory (issue 32, item 2).

Measured effects are in `benchmarks/calibration.py`; these tests pin the
behaviour: shape inference never sees the weights, the session grows its
arena by what it asks for, and freed heap goes back to the system.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import psutil
import pytest

from bodypose_exporter.calibration import session_memory, tensors
from bodypose_exporter.calibration.collect import RangeCollector
from bodypose_exporter.calibration.tensors import select_tensors


def _value_types(model: onnx.ModelProto) -> dict[str, bytes]:
    graph = model.graph
    values = [*graph.input, *graph.output, *graph.value_info]
    return {v.name: v.type.SerializeToString() for v in values}


def test_shape_inference_sees_no_weights_and_infers_the_same(
    small_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = onnx.load(str(small_model))
    full = onnx.shape_inference.infer_shapes(model)
    seen: list[onnx.ModelProto] = []
    returned: list[onnx.ModelProto] = []
    infer = onnx.shape_inference.infer_shapes

    def recording(given: onnx.ModelProto, *args: Any, **kwargs: Any) -> onnx.ModelProto:
        seen.append(given)
        returned.append(infer(given, *args, **kwargs))
        return returned[-1]

    monkeypatch.setattr(onnx.shape_inference, "infer_shapes", recording)
    selected = select_tensors(model)

    assert len(seen) == 1
    largest = max(model.graph.initializer, key=lambda t: t.ByteSize())
    assert largest.ByteSize() > 4 * tensors._KEPT_CONSTANT_ELEMENTS  # the test means something
    assert largest.name not in {t.name for t in seen[0].graph.initializer}
    assert all(
        len(t.raw_data) <= 8 * tensors._KEPT_CONSTANT_ELEMENTS for t in seen[0].graph.initializer
    )
    weights = {t.name for t in model.graph.initializer}
    inferred = {k: v for k, v in _value_types(returned[0]).items() if k not in weights}
    assert inferred == {k: v for k, v in _value_types(full).items() if k not in weights}
    monkeypatch.undo()
    assert selected == select_tensors(model)


def test_small_constants_keep_their_values_for_shape_inference() -> None:
    shape = onnx.numpy_helper.from_array(np.array([1, -1], "int64"), "shape")
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Reshape", ["x", "shape"], ["y"])],
        "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 3, 4])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
        [shape],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 13)])
    light = tensors._without_weights(model)
    assert [t.name for t in light.graph.initializer] == ["shape"]
    inferred = onnx.shape_inference.infer_shapes(light).graph.output[0]
    assert [d.dim_value for d in inferred.type.tensor_type.shape.dim] == [1, 24]


def test_the_collector_session_grows_its_arena_by_what_it_asks_for(small_model: Path) -> None:
    options = session_memory.session_options()
    assert options.get_session_config_entry("session.use_env_allocators") == "1"
    assert not options.enable_mem_pattern
    model = onnx.load(str(small_model))
    collector = RangeCollector(model, select_tensors(model))
    used = collector.session.get_session_options()
    assert used.get_session_config_entry("session.use_env_allocators") == "1"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_freed_heap_goes_back_to_the_system() -> None:
    process = psutil.Process()
    before = process.memory_info().rss
    # 64 KiB blocks: below glibc's mmap threshold, so they come from the heap and
    # stay in the process after `del` until trimmed.
    blocks = [bytearray(64 * 1024) for _ in range(3200)]
    for block in blocks:
        block[::4096] = b"\x01" * len(block[::4096])  # touch every page
    held = process.memory_info().rss
    del blocks, block
    if not session_memory.release_freed_heap():
        pytest.skip("no malloc_trim in this C library")
    after = process.memory_info().rss
    assert held - before > 150 * 2**20
    assert after < held - 150 * 2**20
