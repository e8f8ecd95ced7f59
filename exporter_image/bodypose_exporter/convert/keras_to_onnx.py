"""Convert the deploy-time Keras BpNet to ONNX with tf2onnx (the `tfonnx` backend).

Tensor names follow what TAO's tf2onnx-based export produced and what its
consumers read: the input `input_1:0` (NHWC, dynamic batch) and the outputs
`<layer>/BiasAdd:0` (`paf_out/BiasAdd:0`, `heatmap_out/BiasAdd:0`, or with
`--sdk_compatible_model` `conv2d_transpose_1/BiasAdd:0`), as in the DeepStream
bodypose2d app configs (NVIDIA-AI-IOT/deepstream_tao_apps) and TAO's
`tao-converter -o heatmap_out/BiasAdd:0,conv2d_transpose_1/BiasAdd:0` usage.
tf2onnx's `from_keras` names graph outputs after Keras layers, so we rename.

Opset 13: the lowest that has per-channel QuantizeLinear/DequantizeLinear,
which the int8 QDQ model needs, and well inside TensorRT 10's ONNX parser range.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx

# tf2onnx imports TensorFlow: through keras_backend, so its import chatter is kept quiet.
from bodypose_exporter.model.keras_backend import tf, tf2onnx
from bodypose_exporter.native_logs import quiet_native_logs

ONNX_OPSET = 13
INPUT_NAME = "input_1:0"
BATCH_DIM = "N"


@dataclass(frozen=True)
class OnnxExportInfo:
    """What the exported ONNX model looks like to its consumers."""

    path: Path
    input_name: str
    input_shape: list[int | str]
    output_names: list[str]
    output_shapes: list[list[int | str]] = field(default_factory=list)
    opset: int = ONNX_OPSET


def _rename_values(graph: onnx.GraphProto, renames: dict[str, str]) -> None:
    for node in graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    for value in [*graph.input, *graph.output, *graph.value_info]:
        value.name = renames.get(value.name, value.name)


def _shape(value: onnx.ValueInfoProto) -> list[int | str]:
    return [
        d.dim_param if d.HasField("dim_param") else int(d.dim_value)
        for d in value.type.tensor_type.shape.dim
    ]


def keras_to_onnx(model: Any, onnx_path: Path) -> OnnxExportInfo:
    """Write `model` (fixed H, W; dynamic batch) as ONNX at `onnx_path`."""
    _, height, width, channels = model.inputs[0].shape
    spec = (tf.TensorSpec((None, height, width, channels), tf.float32, name="input_1"),)
    # tf2onnx names the nodes it inserts from a process-wide counter
    # (tf2onnx.utils.make_name), so a second conversion in one process names the
    # same tensors differently. cal.bin is keyed by those names: start the
    # counter afresh so the same model always gives the same names.
    tf2onnx.utils.INTERNAL_NAME = 1
    with quiet_native_logs():  # grappler's session lines, one pair per conversion pass
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=ONNX_OPSET)
    graph = proto.graph

    renames = {graph.input[0].name: INPUT_NAME}
    for out, keras_out in zip(graph.output, model.outputs, strict=True):
        layer = keras_out.name.split("/")[0]
        renames[out.name] = f"{layer}/BiasAdd:0"
    _rename_values(graph, renames)
    for value in [*graph.input, *graph.output]:
        batch = value.type.tensor_type.shape.dim[0]
        batch.ClearField("dim_value")
        batch.dim_param = BATCH_DIM
    proto.producer_name = "bodypose-export (tf2onnx)"
    onnx.save(proto, str(onnx_path))
    return OnnxExportInfo(
        path=onnx_path,
        input_name=INPUT_NAME,
        input_shape=_shape(graph.input[0]),
        output_names=[o.name for o in graph.output],
        output_shapes=[_shape(o) for o in graph.output],
    )
