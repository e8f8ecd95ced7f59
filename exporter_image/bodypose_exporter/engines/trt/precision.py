"""`-s/--strict_type_constraints`: make TensorRT obey the requested precision.

TAO's flag meant TensorRT's STRICT_TYPES (removed in TensorRT 10). Its
successor, `BuilderFlag.OBEY_PRECISION_CONSTRAINTS`, only binds layers whose
`precision` is set (TensorRT developer guide, "Layer-Level Control of
Precision"; tao_deploy `nvidia_tao_deploy/engine/builder.py`,
`set_layer_precisions`, skips the same kinds of layers). So `-s` sets the
flag and the precision of every compute layer:

- fp16: all of them to HALF;
- int8: those whose input and output tensors all have a scale in the
  calibration cache (TensorRT cannot run a layer in INT8 without them);
- fp32: nothing to constrain (FP32 is already what TensorRT chooses without
  FP16/INT8 flags), reported as such.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

log = logging.getLogger(__name__)

_COMPUTE = (
    "CONVOLUTION",
    "DECONVOLUTION",
    "ACTIVATION",
    "POOLING",
    "ELEMENTWISE",
    "CONCATENATION",
    "SCALE",
)


def constrain(trt: Any, network: Any, config: Any, precision: str, scaled: Collection[str]) -> int:
    """Set OBEY_PRECISION_CONSTRAINTS and per-layer precisions; returns the layers constrained."""
    if precision == "fp32":
        log.info("-s has no effect on an fp32 engine: TensorRT already runs it in FP32")
        return 0
    config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    kinds = {getattr(trt.LayerType, k) for k in _COMPUTE}
    target = trt.DataType.HALF if precision == "fp16" else trt.DataType.INT8
    count = 0
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        if layer.type not in kinds:
            continue
        if precision == "int8":
            names = [layer.get_input(i).name for i in range(layer.num_inputs) if layer.get_input(i)]
            names += [layer.get_output(i).name for i in range(layer.num_outputs)]
            if not all(name in scaled for name in names):
                continue
        layer.precision = target
        count += 1
    log.info("-s: %d layers constrained to %s", count, precision)
    return count
