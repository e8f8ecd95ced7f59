"""The `tensorrt` QDQ model is one TensorRT's ONNX parser accepts: no int32 DequantizeLinear.

TensorRT's explicit quantization takes int8 Q/DQ only; a bias quantized to
int32 (ONNX Runtime's default, `QuantizeBias`) fails the parse. Checked on
the graph, since TensorRT itself cannot run here.
"""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, numpy_helper

from bodypose_exporter.calibration.qdq import EXPLICIT_INT8, UINT8_RELU, write_qdq_model
from bodypose_exporter.calibration.tensors import select_tensors

#: The flavours by the backend whose artifacts use them.
FLAVOURS = {"tensorrt": EXPLICIT_INT8, "onnxruntime": UINT8_RELU}


def _int32_dequantized(model: onnx.ModelProto) -> list[str]:
    """DequantizeLinear nodes whose input is an int32 tensor (initializer or constant)."""
    int32 = {i.name for i in model.graph.initializer if i.data_type == TensorProto.INT32}
    for node in model.graph.node:
        if node.op_type == "Constant":
            value = next(a.t for a in node.attribute if a.name == "value")
            if value.data_type == TensorProto.INT32:
                int32.add(node.output[0])
    return [
        n.name for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in int32
    ]


def _qdq(small_model: Path, tmp_path: Path, flavour: str) -> onnx.ModelProto:
    graph = onnx.load(str(small_model))
    amax = dict.fromkeys(select_tensors(graph).names, 4.0)
    out = tmp_path / f"{flavour}.qdq.onnx"
    write_qdq_model(small_model, amax, out, flavour=FLAVOURS[flavour])
    return onnx.load(str(out))


def test_tensorrt_flavour_keeps_biases_float(small_model: Path, tmp_path: Path) -> None:
    model = _qdq(small_model, tmp_path, "tensorrt")
    assert _int32_dequantized(model) == []
    initializers = {i.name: i for i in model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    assert convs
    for conv in convs:
        assert len(conv.input) == 3, conv.name  # BpNet's convolutions all have a bias
        bias = initializers[conv.input[2]]  # the float bias itself, not a DequantizeLinear output
        assert bias.data_type == TensorProto.FLOAT
        assert numpy_helper.to_array(bias).dtype.name == "float32"
    # and it is still quantized: int8 Q/DQ around every convolution's input
    q_types = {
        initializers[n.input[2]].data_type
        for n in model.graph.node
        if n.op_type == "QuantizeLinear" and len(n.input) > 2
    }
    assert q_types == {TensorProto.INT8}


@pytest.mark.parametrize("flavour", ["onnxruntime"])
def test_the_check_sees_int32_biases_where_they_are(
    small_model: Path, tmp_path: Path, flavour: str
) -> None:
    """The onnxruntime flavour keeps int32 biases (QLinearConv wants them): the check finds them."""
    assert _int32_dequantized(_qdq(small_model, tmp_path, flavour))
