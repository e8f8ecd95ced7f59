"""`-s/--strict_type_constraints`: which layers TensorRT must run in the requested precision.

TAO's flag meant TensorRT's STRICT_TYPES (removed in TensorRT 10). Its
successor, `BuilderFlag.OBEY_PRECISION_CONSTRAINTS`, binds only layers whose
`precision` is set (TensorRT developer guide, "Layer-Level Control of
Precision"), and fails the build where a bound layer has no kernel in that
precision. INT8 kernels exist for convolution and deconvolution; TensorRT
fuses BpNet's bias, ReLU and the following element-wise layers into them
and keeps concatenation, pooling and resize in higher precision where it has
no INT8 kernel. So `-s` binds convolutions and deconvolutions only (tao_deploy
`nvidia_tao_deploy/engine/builder.py`, `set_layer_precisions`, skips the
others too):

- fp16: every Conv and ConvTranspose to HALF;
- int8: those whose input and output both have a scale in the calibration
  cache (TensorRT cannot run a layer in INT8 without both);
- fp32: nothing to bind (FP32 is what TensorRT runs without FP16/INT8
  flags), reported as such.

The set is computed from the ONNX graph, here and without TensorRT
(`strict_layers`), and `apply` binds the TensorRT layers that the ONNX
parser made from those nodes, matched by output tensor name (the parser
keeps ONNX value names on the layer outputs). With a tensorfile source the
scales exist only once TensorRT has calibrated, so the builder calibrates
first and computes this set from the cache it wrote (`builder`).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

log = logging.getLogger(__name__)

#: ONNX ops whose TensorRT layers (CONVOLUTION, DECONVOLUTION) have INT8 and FP16 kernels.
CONSTRAINED_OPS = ("Conv", "ConvTranspose")
_LAYER_TYPES = ("CONVOLUTION", "DECONVOLUTION")


@dataclass(frozen=True)
class StrictLayers:
    """The ONNX nodes `-s` binds: node name -> its output tensor (what TensorRT's layer outputs)."""

    precision: str
    outputs: dict[str, str]
    skipped_without_scales: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "layers": len(self.outputs),
            "ops": list(CONSTRAINED_OPS),
            "skippedWithoutScales": len(self.skipped_without_scales),
        }


def strict_layers(
    onnx_path: Path, precision: str, scaled: Collection[str] | None = None
) -> StrictLayers:
    """The convolutions `-s` binds in `onnx_path`; for int8 only those `scaled` covers."""
    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    outputs: dict[str, str] = {}
    skipped: list[str] = []
    if precision == "fp32":
        return StrictLayers(precision, outputs)
    for node in graph.node:
        if node.op_type not in CONSTRAINED_OPS:
            continue
        name = node.name or node.output[0]
        if precision == "int8":
            if scaled is None:
                raise ValueError("int8 -s needs the calibration cache's tensor names")
            if node.input[0] not in scaled or node.output[0] not in scaled:
                skipped.append(name)
                continue
        outputs[name] = node.output[0]
    return StrictLayers(precision, outputs, tuple(skipped))


def apply(trt: Any, network: Any, layers: StrictLayers) -> int:
    """Set the precision of the TensorRT layers made from `layers`; returns how many were set."""
    if layers.precision == "fp32":
        log.info("-s has no effect on an fp32 engine: TensorRT already runs it in FP32")
        return 0
    kinds = {getattr(trt.LayerType, k) for k in _LAYER_TYPES}
    target = trt.DataType.HALF if layers.precision == "fp16" else trt.DataType.INT8
    wanted = set(layers.outputs.values())
    bound = 0
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        if layer.type in kinds and layer.get_output(0).name in wanted:
            layer.precision = target
            bound += 1
    if bound != len(wanted):
        log.warning(
            "-s: %d of the model's %d convolutions found in TensorRT's network; the others "
            "are not constrained",
            bound,
            len(wanted),
        )
    log.info("-s: %d convolution layers constrained to %s", bound, layers.precision)
    return bound
