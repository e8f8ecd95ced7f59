"""The explicitly quantized (QDQ) ONNX model, built from our calibration ranges.

ONNX Runtime's `quantize_static` inserts the QuantizeLinear/DequantizeLinear
pairs; it only needs the ranges, and those must be ours, so its own
calibration must not run. Recent ONNX Runtime reads precomputed ranges from
`calibration_cache_path` (a `TensorsData` JSON written by
`save_tensors_data`) and then skips calibration; older releases lack that
parameter, and there we drive its `QDQQuantizer` with a `TensorsData` directly,
which is what `quantize_static` does after calibrating. Where the library
falls short: it cannot take ranges any other way (no public hook before that
parameter), and it quantizes every supported op's inputs and outputs, not
only where TensorRT would place Q/DQ; TensorRT accepts the extra pairs.

Two flavours from the same ranges, weights int8 symmetric per output channel
(int7 or uint8 symmetric around 128 for the onnxruntime flavour on a CPU whose
int8 kernels saturate: `engines.ort.hardware`):

- `EXPLICIT_INT8` (the published `<model>.qdq.onnx`): int8 symmetric activations
  (zero point 0, scale = amax / 127, the scale `cal.bin` holds), the only Q/DQ
  TensorRT's explicit quantization accepts; ONNX Runtime runs it too. Biases
  stay float (`QuantizeBias: False`): ONNX Runtime's default quantizes them
  to int32 behind a `DequantizeLinear`, which TensorRT's ONNX parser refuses
  (TensorRT developer guide, "Explicit Quantization": Q/DQ are int8/fp8 only,
  the bias of a quantized convolution is float; NVIDIA's
  TensorRT-Model-Optimizer leaves biases unquantized for the same reason).
- `UINT8_RELU` (what the ONNX Runtime backend builds its int8 artifact from):
  uint8 activations, Relu outputs with the range [0, amax] and every other
  tensor [-amax, amax]. With a zero point at the bottom of a Relu's range,
  ONNX Runtime folds the Relu into the quantized convolution and keeps the
  whole network in QLinearConv; with symmetric int8 it must dequantize, run
  the Relu in float and quantize again around every Conv+Relu. Measured on
  BpNet at 224x320 (benchmarks/engines.py, the issue-4 investigation): all 37
  convolutions int8 instead of 30, 3 Q/DQ nodes left instead of 94, 1-thread
  speedup over FP32 3.32x -> 3.80x, heatmap-peak agreement 0.869 -> 0.907.
  The [0, amax] range for Relu outputs is what makes dropping the Relu exact;
  uint8 over the symmetric ranges would let negative values through.
"""

from __future__ import annotations

import inspect
import logging
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import onnxruntime.quantization as ortq
from onnxruntime.quantization.calibrate import TensorData, TensorsData

from bodypose_exporter.calibration.tensors import select_tensors

log = logging.getLogger(__name__)

#: Never a zero-width range: a DequantizeLinear scale must be positive.
_MIN_AMAX = 1e-8
_EXTRA_OPTIONS = {"ActivationSymmetric": True, "WeightSymmetric": True}


@dataclass(frozen=True)
class QdqFlavour:
    """How a QDQ model quantizes, from the same ranges (module docstring)."""

    name: str
    unsigned_activations: bool  # uint8, Relu outputs [0, amax]; else int8 symmetric
    quantize_bias: bool  # int32 biases behind a DequantizeLinear (TensorRT parses none)


#: The published `<model>.qdq.onnx`: explicit quantization as TensorRT reads it.
EXPLICIT_INT8 = QdqFlavour("explicit-int8", unsigned_activations=False, quantize_bias=False)
#: ONNX Runtime's CPU artifacts: every Conv+Relu folded into one QLinearConv.
UINT8_RELU = QdqFlavour("uint8-relu", unsigned_activations=True, quantize_bias=True)
#: Weight types: int8 everywhere TensorRT reads the model; for CPUs whose u8 x s8
#: kernels saturate, uint8 or int7 (int8 within [-64, 64], ONNX Runtime's `reduce_range`:
#: two products of 255 x 64 fit a 16-bit lane).
WEIGHT_TYPES = {
    "int8": ortq.QuantType.QInt8,
    "uint8": ortq.QuantType.QUInt8,
    "int7": ortq.QuantType.QInt8,
}


def tensors_data(
    amax: Mapping[str, float], nonnegative: frozenset[str] = frozenset()
) -> TensorsData:
    """Ranges for quantize_static: [-amax, amax], or [0, amax] for `nonnegative` tensors."""
    data = {}
    for name, value in amax.items():
        top = max(float(value), _MIN_AMAX)
        bottom = 0.0 if name in nonnegative else -top
        data[name] = TensorData(
            lowest=np.array(bottom, dtype=np.float32), highest=np.array(top, dtype=np.float32)
        )
    return TensorsData(ortq.CalibrationMethod.MinMax, data)


def relu_outputs(model: onnx.ModelProto) -> frozenset[str]:
    return frozenset(n.output[0] for n in model.graph.node if n.op_type == "Relu")


class _DropPreprocessHint(logging.Filter):
    """quantize_static advises its pre-processing on the root logger; not our user's concern."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


@contextmanager
def _quiet_root() -> Iterator[None]:
    root = logging.getLogger()
    hint = _DropPreprocessHint()
    root.addFilter(hint)
    try:
        yield
    finally:
        root.removeFilter(hint)


def nodes_without_ranges(model: onnx.ModelProto, amax: Mapping[str, float]) -> list[str]:
    """Nodes touching a calibration tensor that has no range (a reused cache may lack some).

    quantize_static refuses to quantize a node without ranges for all its
    tensors; such nodes stay in float, as TensorRT runs the layers a cache has
    no scale for in higher precision.
    """
    missing = set(select_tensors(model).names) - set(amax)
    return [
        node.name
        for node in model.graph.node
        if missing.intersection(node.input) or missing.intersection(node.output)
    ]


def ranges_of(qdq_model: Path) -> dict[str, float]:
    """The activation ranges (amax) a symmetric int8 QDQ model was quantized with.

    Each QuantizeLinear of an activation (not of an initializer) holds the
    tensor's scale, and a symmetric int8 scale is amax / 127 (the tensorrt
    flavour, the published `<model>.qdq.onnx`), so the ranges can be
    recovered to quantize the FP32 model again in another flavour.
    """
    graph = onnx.load(str(qdq_model), load_external_data=False).graph
    constants = {t.name: t for t in graph.initializer}
    amax: dict[str, float] = {}
    for node in graph.node:
        if node.op_type != "QuantizeLinear" or node.input[0] in constants:
            continue
        scale = constants.get(node.input[1])
        if scale is None or scale.dims:  # a per-channel scale is a weight's, not an activation's
            continue
        amax[node.input[0]] = float(onnx.numpy_helper.to_array(scale)) * 127.0
    if not amax:
        raise ValueError(f"{qdq_model} holds no per-tensor activation QuantizeLinear nodes")
    return amax


def write_qdq_model(
    fp32_model: Path,
    amax: Mapping[str, float],
    qdq_model: Path,
    flavour: QdqFlavour = EXPLICIT_INT8,
    weights: str = "int8",
) -> None:
    """Quantize `fp32_model` with the given per-tensor amax into `qdq_model` (QDQ format).

    `flavour`: `EXPLICIT_INT8` (int8 symmetric activations) or `UINT8_RELU`
    (uint8, Relu outputs [0, amax]); see the module docstring. `weights`:
    "int8", or "int7" or "uint8" (symmetric around 128) for the uint8 flavour on CPUs
    whose int8 kernels saturate (`engines.ort.hardware`).
    """
    if weights not in WEIGHT_TYPES or (weights != "int8" and not flavour.unsigned_activations):
        raise ValueError(f"{flavour.name} QDQ models take int8 weights, not {weights!r}")
    graph = onnx.load(str(fp32_model), load_external_data=False)
    for_ort = flavour.unsigned_activations
    ranges = tensors_data(amax, relu_outputs(graph) if for_ort else frozenset())
    excluded = nodes_without_ranges(graph, amax)
    if excluded:
        log.warning(
            "%d nodes have a tensor without a calibration range and stay in float in the "
            "QDQ model (e.g. %s)",
            len(excluded),
            excluded[0],
        )
    common = {
        "quant_format": ortq.QuantFormat.QDQ,
        "per_channel": True,
        "reduce_range": weights == "int7",
        "activation_type": ortq.QuantType.QUInt8 if for_ort else ortq.QuantType.QInt8,
        "weight_type": WEIGHT_TYPES[weights],
        "extra_options": {
            **_EXTRA_OPTIONS,
            "ActivationSymmetric": not for_ort,
            "QuantizeBias": flavour.quantize_bias,
        },
        "nodes_to_exclude": excluded,
    }
    qdq_model.parent.mkdir(parents=True, exist_ok=True)
    with _quiet_root():
        if "calibration_cache_path" in inspect.signature(ortq.quantize_static).parameters:
            # Here, not at the top: this name exists only in the releases that take
            # calibration_cache_path; the other branch imports what older ones have.
            from onnxruntime.quantization.calibrate import save_tensors_data

            with tempfile.TemporaryDirectory(prefix="bpcal-qdq-") as tmp:
                cache = Path(tmp) / "ranges.json"
                save_tensors_data(ranges, cache)
                ortq.quantize_static(
                    str(fp32_model),
                    str(qdq_model),
                    calibration_data_reader=None,
                    calibrate_method=ortq.CalibrationMethod.MinMax,
                    calibration_cache_path=cache,
                    **common,  # type: ignore[arg-type]
                )
        else:  # pragma: no cover - ONNX Runtime releases before calibration_cache_path
            # Older ONNX Runtime only (see above).
            from onnxruntime.quantization.qdq_quantizer import QDQQuantizer
            from onnxruntime.quantization.quant_utils import load_model_with_shape_infer

            quantizer = QDQQuantizer(
                load_model_with_shape_infer(fp32_model),
                common["per_channel"],
                common["reduce_range"],
                common["weight_type"],
                common["activation_type"],
                ranges,
                None,
                excluded,
                None,
                common["extra_options"],
            )
            quantizer.quantize_model()
            quantizer.model.save_model_to_file(str(qdq_model), False)
    log.info("wrote the QDQ model %s (%s flavour)", qdq_model, flavour.name)
