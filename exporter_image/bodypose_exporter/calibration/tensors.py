"""Which ONNX tensors get a calibration range, and which of them must be measured.

TensorRT's calibrator (implicit quantization, `IInt8EntropyCalibrator2`, which
calibrates before layer fusion) writes a range for every activation tensor of
the network, named as its ONNX parser names them: the ONNX value names. So
the cache covers every float activation: the graph inputs and every node
output that is not computed from constants alone (weights, shapes).

Measuring all of them would be wasteful, and measuring some would slow the
forward passes, so tensors are grouped by range:

- Layout ops (Transpose, Reshape, Flatten, Squeeze, Unsqueeze, Identity)
  output exactly the values they take in: the output shares its input's range.
- A tensor whose only consumer is a Relu (a Conv output, typically) takes the
  Relu output's range. Quantizing with that range and then applying Relu gives
  exactly relu(x) quantized with it, for symmetric int8: relu(clip(x, -r, r))
  == clip(relu(x), 0, r). This is also what TensorRT runs after fusing
  Conv+ReLU, and not observing the pre-Relu tensor leaves ONNX Runtime free
  to fuse Conv+Relu during calibration.

Every other tensor is measured (histogrammed) itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import onnx

#: Ops whose output holds exactly the values of their first input.
LAYOUT_OPS = frozenset({"Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"})
#: Ops whose output is never negative (the |x| histogram then needs no Abs).
NONNEGATIVE_OPS = frozenset({"Relu"})
_FLOAT = onnx.TensorProto.FLOAT


@dataclass(frozen=True)
class CalibrationTensors:
    """All tensors to write, in graph order; `alias[t]` is the measured tensor t takes."""

    names: tuple[str, ...]
    measured: tuple[str, ...]
    alias: dict[str, str]
    nonnegative: frozenset[str]

    def source(self, name: str) -> str:
        """The measured tensor whose range `name` gets."""
        seen = {name}
        while name in self.alias:
            name = self.alias[name]
            if name in seen:  # cannot happen in a DAG; guard against a broken graph
                raise ValueError(f"alias cycle at {name}")
            seen.add(name)
        return name


#: Initializers up to this many elements keep their values for shape inference (shape
#: and scale constants, which Reshape's or Resize's inference reads); larger ones (weights)
#: are passed as typed inputs.
_KEPT_CONSTANT_ELEMENTS = 1024


def _without_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` with its large initializers turned into typed graph inputs.

    Why: `infer_shapes` serializes and parses the model it is given, so on the
    whole model it held two more copies of the weights for a moment (+128 MB
    for BpNet at 320x448, measured) and left about half of that in the
    process's heap afterwards, under the calibration loop's peak. Shapes and
    types come out the same: inference needs a weight's type and dims, not its
    values.
    """
    graph = model.graph
    listed = {value.name for value in graph.input}
    light = onnx.GraphProto(name=graph.name)
    for field in ("node", "input", "output", "value_info", "sparse_initializer"):
        getattr(light, field).extend(getattr(graph, field))
    for tensor in graph.initializer:
        if math.prod(tensor.dims) <= _KEPT_CONSTANT_ELEMENTS:
            light.initializer.append(tensor)
        elif tensor.name not in listed:
            light.input.append(
                onnx.helper.make_tensor_value_info(tensor.name, tensor.data_type, tensor.dims)
            )
    return onnx.helper.make_model(
        light,
        ir_version=model.ir_version,
        opset_imports=model.opset_import,
        functions=model.functions,
    )


def _float_value_names(model: onnx.ModelProto) -> set[str]:
    inferred = onnx.shape_inference.infer_shapes(_without_weights(model))
    graph = inferred.graph
    names = set()
    for value in [*graph.input, *graph.output, *graph.value_info]:
        if value.type.tensor_type.elem_type == _FLOAT:
            names.add(value.name)
    return names


def select_tensors(model: onnx.ModelProto) -> CalibrationTensors:
    """The calibration tensors of a float32 ONNX model (see the module docstring)."""
    graph = model.graph
    floats = _float_value_names(model)
    constants = {init.name for init in graph.initializer}
    inputs = [v.name for v in graph.input if v.name not in constants]
    graph_outputs = {v.name for v in graph.output}

    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            if name:
                consumers.setdefault(name, []).append(node)

    names: list[str] = [n for n in inputs if n in floats]
    producer: dict[str, onnx.NodeProto] = {}
    for node in graph.node:
        data_inputs = [n for n in node.input if n]
        if node.op_type == "Constant" or (data_inputs and all(n in constants for n in data_inputs)):
            constants.update(node.output)
            continue
        for out in node.output:
            if out and out in floats:
                names.append(out)
                producer[out] = node

    alias: dict[str, str] = {}
    for name in names:
        node = producer.get(name)
        if node is not None and node.op_type in LAYOUT_OPS and node.input[0] not in constants:
            alias[name] = node.input[0]
            continue
        users = consumers.get(name, [])
        if (
            name not in graph_outputs
            and len(users) == 1
            and users[0].op_type == "Relu"
            and users[0].output[0] in floats
        ):
            alias[name] = users[0].output[0]

    nonnegative = frozenset(
        name for name, node in producer.items() if node.op_type in NONNEGATIVE_OPS
    )
    measured = tuple(n for n in names if n not in alias)
    return CalibrationTensors(
        names=tuple(names), measured=measured, alias=alias, nonnegative=nonnegative
    )
