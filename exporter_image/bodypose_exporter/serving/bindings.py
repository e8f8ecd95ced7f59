"""An ONNX model's bindings as a server sees them: names, element types, dims without the batch.

Read from the graph's declared inputs and outputs (tf2onnx writes their
shapes; the batch is the one dynamic dimension), so the serving configs and
the engine's optimization profile are made from the model itself, never from
what the spec says it should be.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx

from bodypose_exporter.errors import UserError

#: ONNX element type -> Triton's `DataType` enum name (model_config.proto).
TRITON_TYPES: dict[int, str] = {
    onnx.TensorProto.FLOAT: "TYPE_FP32",
    onnx.TensorProto.FLOAT16: "TYPE_FP16",
    onnx.TensorProto.INT8: "TYPE_INT8",
    onnx.TensorProto.INT32: "TYPE_INT32",
    onnx.TensorProto.INT64: "TYPE_INT64",
}


@dataclass(frozen=True)
class Binding:
    name: str
    elem_type: int  # onnx.TensorProto element type
    dims: tuple[int, ...]  # without the batch dimension

    @property
    def triton_type(self) -> str:
        return TRITON_TYPES[self.elem_type]


@dataclass(frozen=True)
class Bindings:
    inputs: tuple[Binding, ...]
    outputs: tuple[Binding, ...]

    @property
    def input(self) -> Binding:
        return self.inputs[0]

    def all_value_names(self) -> set[str]:
        return {b.name for b in (*self.inputs, *self.outputs)}


def _binding(value: onnx.ValueInfoProto, path: Path) -> Binding:
    tensor = value.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
    if len(dims) < 2 or any(d < 1 for d in dims[1:]):
        raise UserError(
            f"{path}: {value.name} has shape {dims}; only the batch (first) dimension may be "
            "dynamic"
        )
    if tensor.elem_type not in TRITON_TYPES:
        raise UserError(f"{path}: {value.name} has ONNX element type {tensor.elem_type}")
    return Binding(value.name, tensor.elem_type, tuple(dims[1:]))


def read(path: Path) -> Bindings:
    """The bindings of the ONNX model at `path` (weights not loaded)."""
    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}
    inputs = tuple(_binding(v, path) for v in graph.input if v.name not in initializers)
    if len(inputs) != 1:
        raise UserError(f"{path}: expected one input, the model has {[b.name for b in inputs]}")
    return Bindings(inputs, tuple(_binding(v, path) for v in graph.output))


def value_names(path: Path) -> set[str]:
    """Every tensor name of the model: inputs, initializers, node outputs (for cal.bin checks)."""
    graph = onnx.load(str(path), load_external_data=False).graph
    names = {v.name for v in graph.input} | {i.name for i in graph.initializer}
    for node in graph.node:
        names.update(node.output)
    return names
