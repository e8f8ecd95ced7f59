"""ONNX Runtime builder: the graph-optimized model is the artifact.

Build = open an `InferenceSession` with `SessionOptions.optimized_model_filepath`
set, which makes ONNX Runtime write the graph after its optimizations
(ONNX Runtime docs, "Graph Optimizations in ONNX Runtime", online/offline
mode). Level ORT_ENABLE_EXTENDED, not ALL: ALL adds the layout optimizations
(NCHWc) that depend on the CPU the model is optimized on, and ONNX Runtime
itself warns when such a model is serialized ("The generated model may
contain hardware specific optimizations, and should only be used in the same
environment the model was optimized in"). EXTENDED (constant folding, Conv
fusions, QDQ -> QLinear fusions for int8) stays valid on any CPU with the
same ONNX Runtime; the runner opens the artifact at the default level (ALL),
so the layout work is redone, cheaply, on the machine that runs it.

Precisions: fp32 optimizes the FP32 graph; int8 optimizes a QDQ model made
here, from the FP32 graph and the calibration ranges (cal.bin, or the ranges
the published QDQ model holds when no cal.bin is given), in the ONNX Runtime
flavour of calibration's `write_qdq_model` (uint8 activations, Relu outputs
[0, amax]: ONNX Runtime then fuses every Conv+Relu into QLinearConv;
faster and closer to FP32 than the TensorRT-flavoured published QDQ model),
with the weight type the CPU's int8 class needs to compute it without
saturating (`hardware.int8_weights`: int8 where VNNI/AMX or Arm kernels
accumulate in 32 bits, int7 on x86 without VNNI, and uint8 there where
int7 misses the gates: the build step's fallback, `backend.py`). The class is this
machine's, or the one the request names (`int8_instruction_set`), and the
artifact records it three times: its manifest's `compatibility`, its
details, and the ONNX model's own metadata (`hardware.METADATA_KEYS`), so the runner
can refuse an artifact that would saturate on the CPU it is asked to run
on. fp16 builds the FP32 graph and says so (`facts.FP16_AS_FP32`): ONNX
Runtime's CPU provider has no FP16 convolution kernels on x86, and a
resource's precision applies to all its targets, so a CPU target of an fp16
resource gets the nearest thing it can run rather than a failure. The
artifact is what it is everywhere: named `.fp32.onnx` (`naming.artifact_file_name`),
recorded `precision: fp32` with `requestedPrecision: fp16` and the reason in its
manifest (`stages.build`), held to fp32's gates, `effectivePrecision` in the
details, a log line.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import onnx
import onnxruntime as ort

from bodypose_contract.manifest import Int8Source, Key
from bodypose_exporter.calibration import calibration_cache
from bodypose_exporter.calibration.qdq import UINT8_RELU, ranges_of, write_qdq_model
from bodypose_exporter.engines.base import (
    BuildRequest,
    BuiltEngine,
    CompatibilityRecord,
    EngineOptions,
    Graph,
)
from bodypose_exporter.engines.ort import hardware
from bodypose_exporter.engines.ort.args import OnnxRuntimeOptions
from bodypose_exporter.engines.ort.facts import FACTS
from bodypose_exporter.engines.ort.runner import PROVIDERS
from bodypose_exporter.errors import UserError

log = logging.getLogger(__name__)

ARTIFACT_LEVEL = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED


def _usable_cache(request: BuildRequest) -> Path | None:
    """cal.bin when given and present: int8 is then built from it (see the module docstring)."""
    cache = request.calibration_cache
    return cache if cache is not None and cache.exists() else None


def _int8_ranges(request: BuildRequest) -> tuple[dict[str, float], str]:
    """The calibration ranges and where they came from (cal.bin first, else the QDQ model)."""
    cache = _usable_cache(request)
    if cache is not None:
        return calibration_cache.read(cache).amax(), "calibration-cache"
    if request.qdq_model is not None:
        try:
            return ranges_of(request.qdq_model), "qdq"
        except (ValueError, onnx.onnx_cpp2py_export.checker.ValidationError) as exc:  # type: ignore[attr-defined]
            raise UserError(f"--qdq_model {request.qdq_model}: {exc}") from exc
    raise UserError(
        "--engine_backend onnxruntime with --data_type int8 needs the QDQ model that "
        "INT8 calibration writes (--qdq_model) or its cal.bin (--cal_cache_file)"
    )


def _mark(artifact: Path, record: dict[str, str]) -> None:
    """Write the int8 record into the artifact's own metadata (the file says what it needs)."""
    model = onnx.load(str(artifact), load_external_data=False)
    kept = [p for p in model.metadata_props if p.key not in hardware.METADATA_KEYS.values()]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for field, key in hardware.METADATA_KEYS.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, record[field]
    onnx.save(model, str(artifact))


def int8_record(options: EngineOptions, described: dict[str, Any]) -> CompatibilityRecord | None:
    """An int8 artifact's record: the CPU class it is built for and the weights that needs."""
    if options.precision != "int8":
        return None
    own = options.own(OnnxRuntimeOptions)
    instruction_set = own.int8_instruction_set or described["int8InstructionSet"]
    return CompatibilityRecord(
        {
            "instructionSet": instruction_set,
            "weights": own.int8_weights or hardware.int8_weights(instruction_set),
            "onnxruntimeVersion": ort.__version__,
        }
    )


class OnnxRuntimeBuilder:
    """Builds the artifact: `build(request)`; `backend.py` pairs it with the runner."""

    def build(self, request: BuildRequest) -> BuiltEngine:
        with tempfile.TemporaryDirectory(prefix="bpnet-ort-") as tmp:
            return self._build(request, Path(tmp))

    def _build(self, request: BuildRequest, work: Path) -> BuiltEngine:
        options = request.options
        described = {**hardware.describe(), "onnxruntimeVersion": ort.__version__}
        if options.precision == "fp16":
            log.warning(
                "ONNX Runtime's CPU provider has no FP16 convolution kernels: the fp16 artifact "
                "for this CPU target is the optimized FP32 graph"
            )
        source = request.onnx_path
        details: dict[str, Any] = {Key.INT8_SOURCE: Int8Source.FP32}
        record = int8_record(options, described)
        if record is not None:
            instruction_set, weights = record.fields["instructionSet"], record.fields["weights"]
            amax, origin = _int8_ranges(request)
            source = work / "qdq.onnx"
            write_qdq_model(request.onnx_path, amax, source, flavour=UINT8_RELU, weights=weights)
            details = {Key.INT8_SOURCE: origin, "int8Weights": weights}
            log.info(
                "int8 for %s CPUs: %s weights%s",
                instruction_set,
                weights,
                " (its uint8 x int8 kernels saturate with 8-bit weights; see "
                "engines/ort/hardware.py)"
                if weights != "int8"
                else "",
            )
            if not described["int8DotProduct"]:
                log.warning(
                    "this CPU has no int8 dot-product instructions (VNNI/AMX/dotprod): the int8 "
                    "artifact runs, but not faster than fp32"
                )
        if options.strict_types:
            log.info("-s/--strict_type_constraints has no effect on ONNX Runtime artifacts")
        session = ort.SessionOptions()
        session.graph_optimization_level = ARTIFACT_LEVEL
        session.optimized_model_filepath = str(request.engine_path)
        request.engine_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        try:
            ort.InferenceSession(str(source), session, providers=PROVIDERS)
        except (ort.capi.onnxruntime_pybind11_state.Fail, RuntimeError) as exc:  # type: ignore[attr-defined]
            raise UserError(f"ONNX Runtime cannot optimize {source}: {exc}") from exc
        seconds = time.perf_counter() - started
        if record is not None:
            _mark(request.engine_path, record.fields)
        details.update(
            {
                "effectivePrecision": "int8" if options.precision == "int8" else "fp32",
                "optimizationLevel": "ORT_ENABLE_EXTENDED",
                "optimizeSeconds": round(seconds, 3),
            }
        )
        graph = Graph.of_int8_source(details[Key.INT8_SOURCE])
        return BuiltEngine(request.engine_path, FACTS.name, described, details, graph=graph)
