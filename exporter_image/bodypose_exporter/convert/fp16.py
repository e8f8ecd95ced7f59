"""The FP16 mixed-precision ONNX model (`<model>.fp16.onnx`): FP16 inside, FP32 inputs and outputs.

What TensorRT's strongly typed networks build fp16 engines from: TensorRT 11
has no FP16 builder flag (NVIDIA's migration guide for 11.x: "BuilderFlag.FP16
-> strong typing with ModelOpt AutoCast"), and TensorRT-RTX never had one.
NVIDIA's tool for it is ModelOpt AutoCast (`modelopt.onnx.autocast`), which
cannot be imported without torch (nvidia-modelopt imports torch from its ONNX
package) and pins an older onnx; so this module applies AutoCast's method with
the converter AutoCast itself calls, onnxconverter-common's
`float16.convert_float_to_float16(keep_io_types=True)`, and AutoCast's default
rules for which nodes stay FP32 (nvidia-modelopt 0.47 `onnx/autocast/
nodeclassifier.py`, `precisionconverter.py`). A node stays FP32 when:

1. one of its float initializers reaches beyond FP16's range (|w| > 65504,
   AutoCast's `InitializerRangeRule`);
2. one of its inputs or outputs exceeds |512| on the reference inputs
   (AutoCast's `IORangeRule`, `DEFAULT_DATA_MAX`: above 512 an FP16 step is
   0.5 or more); AutoCast uses random inputs when given none, here the
   export's reference inputs;
3. its op type has no float16 in its ONNX schema at the model's opset, or is
   one AutoCast keeps in FP32 (Upsample, NonMaxSuppression, Celu) or Resize
   (its scales stay FP32, and with them the node).

Weights smaller than FP16's smallest subnormal are clamped to it, as AutoCast
does. BodyPoseNet's largest activation is about 10 and its ops (Conv, Relu,
Concat, Transpose, ConvTranspose) all have FP16 kernels, so every node becomes
FP16, as AutoCast converts it (73 of 73 nodes at 224x320, checked once
against AutoCast run with a stand-in torch).

`fp16Nodes` is counted from the converted graph itself (`count_fp16_nodes`: the
nodes, Casts aside, whose outputs onnx's type inference finds float16), not
derived from the rules above: a node the converter keeps in FP32 by its op
type (a `Max`, a `Resize`) is no FP16 node, whatever the rules said.

The check (`compare`): ONNX Runtime runs both models on the reference inputs.
Its CPU provider has no FP16 convolution kernels, so it casts around each
convolution and computes it in FP32: the figures measure the rounding of the
weights (and of the activations between nodes ONNX Runtime keeps in FP16),
not an FP16 engine's accumulation; an engine's own verification does that
where it can run. The export gates these figures as any artifact's
(`stages.export`, `verification.agreement_gates`).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from bodypose_exporter.output_agreement import per_image_cosine

log = logging.getLogger(__name__)

FP16_MAX = float(np.finfo(np.float16).max)  # 65504
#: AutoCast's DEFAULT_DATA_MAX: a tensor beyond this keeps its node in FP32.
DATA_MAX = 512.0
FP16_TINY = float(np.finfo(np.float16).smallest_subnormal)
#: Op types AutoCast keeps in FP32 whatever their schema says, and Resize (its scales).
ALWAYS_FP32_OPS = frozenset({"Upsample", "NonMaxSuppression", "Celu", "Resize"})

Array = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Fp16Model:
    path: Path
    nodes: int
    fp16_nodes: int
    kept_fp32: dict[str, str]  # node -> why it stays FP32
    agreement: dict[str, dict[str, float]]  # output -> cosine (worst image), maxAbsDiff

    def as_dict(self) -> dict[str, Any]:
        return {
            "nodes": self.nodes,
            "fp16Nodes": self.fp16_nodes,
            "keptFp32": self.kept_fp32,
            "rules": "ModelOpt AutoCast's defaults: FP32 where an initializer exceeds 65504, a "
            "tensor exceeds 512 on the reference inputs, or the op has no FP16 (and Resize, "
            "Upsample, NonMaxSuppression, Celu)",
            "converter": "onnxconverter-common float16.convert_float_to_float16 (keep_io_types)",
            "agreement": self.agreement,
            "measuredWith": f"ONNX Runtime {ort.__version__} CPU on the reference inputs",
        }


def _ops_without_fp16(model: onnx.ModelProto) -> set[str]:
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    missing = set()
    for op in {n.op_type for n in model.graph.node}:
        try:
            schema = onnx.defs.get_schema(op, opset)
        except onnx.defs.SchemaError:
            missing.add(op)  # not an ONNX op: a custom op stays FP32
            continue
        if not any("tensor(float16)" in c.allowed_type_strs for c in schema.type_constraints):
            missing.add(op)
    return missing


def _activation_absmax(model: onnx.ModelProto, inputs: Array) -> dict[str, float]:
    """max |value| of every float tensor on `inputs` (ONNX Runtime FP32, as written)."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {o.name for o in probe.graph.output}
    for node in probe.graph.node:
        for name in node.output:
            if name and name not in known:
                probe.graph.output.append(onnx.ValueInfoProto(name=name))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(probe.SerializeToString(), options, ["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    names = [o.name for o in session.get_outputs()]
    peak: dict[str, float] = {input_name: float(np.abs(inputs).max())}
    for i in range(len(inputs)):
        for name, value in zip(names, session.run(None, {input_name: inputs[i : i + 1]}),
                               strict=True):  # fmt: skip
            if value.dtype.kind == "f" and value.size:
                peak[name] = max(peak.get(name, 0.0), float(np.abs(value).max()))
    return peak


def kept_fp32(model: onnx.ModelProto, absmax: Mapping[str, float]) -> dict[str, str]:
    """node -> why it stays FP32, by rules 1 and 2 (module docstring)."""
    initializers = {i.name: i for i in model.graph.initializer}
    keep: dict[str, str] = {}
    for node in model.graph.node:
        for name in node.input:
            init = initializers.get(name)
            if init is not None and init.data_type == onnx.TensorProto.FLOAT:
                top = float(np.abs(numpy_helper.to_array(init)).max(initial=0.0))
                if top > FP16_MAX:
                    keep[node.name] = f"initializer {name} reaches {top:g} (> {FP16_MAX:g})"
        for name in (*node.input, *node.output):
            if absmax.get(name, 0.0) > DATA_MAX:
                keep.setdefault(node.name, f"{name} reaches {absmax[name]:g} (> {DATA_MAX:g})")
    return keep


def count_fp16_nodes(model: onnx.ModelProto) -> int:
    """The nodes of `model` that compute in FP16: every node but a Cast with a float16
    output, as onnx's type inference types the graph."""
    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type
             for v in (*graph.value_info, *graph.input, *graph.output)}  # fmt: skip
    types.update({i.name: i.data_type for i in graph.initializer})
    fp16 = onnx.TensorProto.FLOAT16
    return sum(
        1 for n in graph.node
        if n.op_type != "Cast" and any(types.get(o) == fp16 for o in n.output)
    )  # fmt: skip


def write_fp16_model(fp32_model: Path, out: Path, reference_inputs: Array) -> Fp16Model:
    """Convert `fp32_model` to the FP16 model at `out`, checked against it on the inputs."""
    from onnxconverter_common import float16  # imports onnx's helpers; only for a conversion

    model = onnx.load(str(fp32_model))
    total = len(model.graph.node)  # before the converter adds its Casts
    keep = kept_fp32(model, _activation_absmax(model, reference_inputs))
    blocked = sorted(set(float16.DEFAULT_OP_BLOCK_LIST) | _ops_without_fp16(model)
                     | ALWAYS_FP32_OPS)  # fmt: skip
    for node in model.graph.node:
        if node.op_type in blocked:
            keep.setdefault(node.name, f"{node.op_type} stays FP32 (its op type is blocked)")
    with warnings.catch_warnings():
        # It says so for the tiny weights it clamps, which is what AutoCast does too.
        warnings.filterwarnings("ignore", module="onnxconverter_common")
        converted = float16.convert_float_to_float16(
            model, keep_io_types=True, min_positive_val=FP16_TINY, max_finite_val=FP16_MAX,
            op_block_list=blocked, node_block_list=sorted(keep),
        )  # fmt: skip
    onnx.checker.check_model(converted, full_check=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(converted, str(out))
    result = Fp16Model(out, total, count_fp16_nodes(converted), keep,
                       compare(fp32_model, out, reference_inputs))  # fmt: skip
    log.info("wrote the FP16 model %s: %d of %d nodes in FP16; %s", out, result.fp16_nodes,
             total, ", ".join(f"{k} cosine {v['cosine']:.6f} max |diff| {v['maxAbsDiff']:.3g}"
                              for k, v in result.agreement.items()))  # fmt: skip
    return result


def compare(fp32_model: Path, fp16_model: Path, inputs: Array) -> dict[str, dict[str, float]]:
    """Per output: the worst image's cosine and the largest |difference|, FP16 vs FP32."""
    runs = []
    for path in (fp32_model, fp16_model):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        outputs = [session.run(None, {session.get_inputs()[0].name: inputs[i : i + 1]})
                   for i in range(len(inputs))]  # fmt: skip
        runs.append({n: np.concatenate([o[k] for o in outputs]) for k, n in enumerate(names)})
    reference, converted = runs
    figures = {}
    for name, expected in reference.items():
        got = converted[name].astype(np.float32)
        figures[name] = {
            "cosine": float(per_image_cosine(expected, got).min()),
            "maxAbsDiff": float(np.abs(expected - got).max()),
        }
    return figures
