"""The calibration model: the FP32 graph plus, per measured tensor, its histogram bin indices.

ONNX Runtime's own calibrators (`onnxruntime/quantization/calibrate.py`,
`HistogramCalibrater.augment_graph`) add every tensor to the graph outputs
and bin the float copies in numpy; for BpNet at 320x448 that is 48 M floats
per image to copy out and histogram in Python, about as long as the forward
pass itself. Instead each measured tensor gets a small subgraph that ONNX
Runtime runs with its multithreaded kernels:

    a      = Abs(x)                         (skipped after a Relu)
    amax   = ReduceMax(a)                   -> output: exact max |x| this batch
    range  = range_in > 0 ? range_in * 2^max(0, ceil(log2(amax / range_in)))
                          : amax            -> output: TensorRT's grown range
    index  = Cast<uint16>(a * (2048 / max(range, 1e-30)))
                                            -> output: bin of every element

`range_in` is a scalar input per tensor carrying the range so far (0 before
the first batch). Only uint16 indices leave the runtime (2 bytes per value
instead of 4), numpy never touches a float activation, and the Conv+Relu
fusions stay intact because the subgraph reads the Relu output. The original
model outputs are dropped from the calibration model: nothing reads them.

The ops used (Abs, ReduceMax without axes, Div, Log, Ceil, Max, Pow, Mul,
Greater, Where, Cast) exist unchanged from opset 11 on; older models are
refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import onnx
from onnx import TensorProto, helper

from bodypose_exporter.calibration.histogram import BINS
from bodypose_exporter.calibration.tensors import CalibrationTensors

PREFIX = "__bpcal"
MIN_OPSET = 11


@dataclass(frozen=True)
class TensorProbe:
    """The names of one measured tensor's subgraph inputs and outputs."""

    tensor: str
    range_in: str
    range_out: str
    amax: str
    index: str


def _const(name: str, value: float) -> TensorProto:
    return helper.make_tensor(name, TensorProto.FLOAT, [], [value])


def _add(
    nodes: list[onnx.NodeProto], op: str, inputs: list[str], output: str, **attrs: Any
) -> None:
    nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))


def _probe(
    p: str, tensor: str, nonnegative: bool, c: str
) -> tuple[TensorProbe, list[onnx.NodeProto]]:
    probe = TensorProbe(tensor, f"{p}_range_in", f"{p}_range", f"{p}_amax", f"{p}_index")
    nodes: list[onnx.NodeProto] = []
    source = tensor
    if not nonnegative:
        source = f"{p}_abs"
        _add(nodes, "Abs", [tensor], source)
    _add(nodes, "ReduceMax", [source], probe.amax, keepdims=0)
    _add(nodes, "Div", [probe.amax, probe.range_in], f"{p}_ratio")
    _add(nodes, "Log", [f"{p}_ratio"], f"{p}_ln")
    _add(nodes, "Div", [f"{p}_ln", f"{c}_ln2"], f"{p}_log2")
    _add(nodes, "Ceil", [f"{p}_log2"], f"{p}_ceil")
    _add(nodes, "Max", [f"{p}_ceil", f"{c}_zero"], f"{p}_doublings")
    _add(nodes, "Pow", [f"{c}_two", f"{p}_doublings"], f"{p}_growth")
    _add(nodes, "Mul", [probe.range_in, f"{p}_growth"], f"{p}_grown")
    _add(nodes, "Greater", [probe.range_in, f"{c}_zero"], f"{p}_started")
    _add(nodes, "Where", [f"{p}_started", f"{p}_grown", probe.amax], probe.range_out)
    _add(nodes, "Max", [probe.range_out, f"{c}_tiny"], f"{p}_safe_range")
    _add(nodes, "Div", [f"{c}_bins", f"{p}_safe_range"], f"{p}_scale")
    _add(nodes, "Mul", [source, f"{p}_scale"], f"{p}_scaled")
    # No Clip before the Cast: only values equal to the range reach 2048, and
    # `histogram.count_indices` folds them into the top bin; a Clip would cost
    # another float copy of the tensor.
    _add(nodes, "Cast", [f"{p}_scaled"], probe.index, to=TensorProto.UINT16)
    return probe, nodes


def default_opset(model: onnx.ModelProto) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return 0


def augment(
    model: onnx.ModelProto, tensors: CalibrationTensors
) -> tuple[onnx.ModelProto, list[TensorProbe]]:
    """A copy of `model` that outputs bin indices, ranges and maxima of the measured tensors."""
    opset = default_opset(model)
    if opset < MIN_OPSET:
        raise ValueError(f"calibration needs ONNX opset >= {MIN_OPSET}; this model has {opset}")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    del graph.output[:]

    c = f"{PREFIX}_const"
    graph.initializer.extend(
        [
            _const(f"{c}_zero", 0.0),
            _const(f"{c}_two", 2.0),
            _const(f"{c}_ln2", math.log(2.0)),
            _const(f"{c}_tiny", 1e-30),
            _const(f"{c}_bins", float(BINS)),
        ]
    )
    probes: dict[str, TensorProbe] = {}
    branches: dict[str, list[onnx.NodeProto]] = {}
    for i, tensor in enumerate(tensors.measured):
        probe, nodes = _probe(f"{PREFIX}{i}", tensor, tensor in tensors.nonnegative, c)
        probes[tensor], branches[tensor] = probe, nodes
        graph.input.append(helper.make_tensor_value_info(probe.range_in, TensorProto.FLOAT, []))
        graph.output.extend(
            [
                helper.make_tensor_value_info(probe.index, TensorProto.UINT16, None),
                helper.make_tensor_value_info(probe.range_out, TensorProto.FLOAT, []),
                helper.make_tensor_value_info(probe.amax, TensorProto.FLOAT, []),
            ]
        )
    # Each branch goes right after the node that produces its tensor: ONNX Runtime
    # executes in this order, so the branch's temporaries are freed at once and the
    # tensor itself is not kept alive to the end of the graph (appending every branch
    # at the end held all activations of a batch at the same time, gigabytes at 320x448).
    ordered: list[onnx.NodeProto] = []
    for name in [v.name for v in graph.input]:
        ordered += branches.pop(name, [])
    for original in model.graph.node:
        ordered.append(original)
        for name in original.output:
            ordered += branches.pop(name, [])
    del graph.node[:]
    graph.node.extend(ordered)
    return out, [probes[name] for name in tensors.measured]
