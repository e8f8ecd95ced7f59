"""The SDK-compatible engine a build publishes beside the evaluated one.

TAO's workflow evaluates the engine without the SDK post-processing, then
re-exports with `--sdk_compatible_model` for DeepStream, a model the
evaluation tools cannot run. Here the export publishes both graphs
(`<model>.onnx`, `<model>.deploy.onnx`) and the build, given `--deploy_onnx`,
builds, verifies and AP-gates the plain engine first, then builds the deploy
one from the same calibration:

- cal.bin is measured once, on the plain graph, and covers the deploy graph
  too (`cover_deploy_graph`, at export): the deploy graph is the plain one
  plus a nearest-neighbour upsampling of the PAF after `paf_out/BiasAdd:0`,
  so every tensor it shares with the plain graph has its scale already, and
  the few it does not share get exact ones without measuring: a layout op's
  output (tf2onnx's NHWC<->NCHW Transposes, whose generated names differ
  between the two conversions: `.../Conv2D__7` vs `__8` after the input)
  takes its input's range, as `calibration.tensors` aliases them, and the
  upsampling (an identity kernel, stride = kernel, zero bias: every output
  value is a copy of an input value) takes `paf_out/BiasAdd:0`'s. Scales for
  tensors a graph does not have are ignored by TensorRT and by the QDQ writer,
  so the plain graph reads the same cal.bin unchanged.
- the QDQ route (a strongly typed TensorRT network) needs a QDQ model of the
  deploy graph: written here from cal.bin's ranges, never measured again;
  `write_qdq_model` leaves the nodes without a range in float, as TensorRT
  would.
- verification: the deploy engine against the deploy ONNX in FP32 on the same
  reference inputs (its outputs differ from the plain model's: PAF at stride 2).

Names follow TAO's notebook: `bpnet_model.H.W.P.deploy.engine`.

The build stage's deploy step is `build_deploy(DeployJob)`: after the plain
engine passed, the deploy engine from the same calibration through the same
build-and-verify step (`stages.build_engine`), returned as a `DeployedEngine`
for the publish step to list, or to reject.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import onnx

from bodypose_exporter.calibration import calibration_cache
from bodypose_exporter.calibration.qdq import EXPLICIT_INT8, write_qdq_model
from bodypose_exporter.calibration.tensors import select_tensors
from bodypose_exporter.convert.fp16 import write_fp16_model
from bodypose_exporter.engines.base import (
    BuildRequest,
    CompatibilityRecord,
    EngineBackend,
    run_batched,
)
from bodypose_exporter.engines.naming import artifact_file_name
from bodypose_exporter.engines.registry import ONNX_REFERENCE, backend_by_name
from bodypose_exporter.errors import UserError
from bodypose_exporter.manifest import Kind, file_name
from bodypose_exporter.serving import deepstream, triton
from bodypose_exporter.stages.build_engine import EngineJob, VerifiedEngine, build_and_verify
from bodypose_exporter.stages.serving_configs import TRITON_DIR, Served
from bodypose_exporter.storage.outputs import OutputSet
from bodypose_exporter.verification.reference import Reference

log = logging.getLogger(__name__)

#: The upsampling layer `model.deploy` adds (SDK_PAF_LAYER there; not imported from it,
#: since `model.deploy` imports TensorFlow and the build stage must not).
SDK_PAF_LAYER = "conv2d_transpose_1"
TRITON_MODEL = "bpnet_deploy"
DEEPSTREAM_FILE = file_name(Kind.DEPLOY_DEEPSTREAM_CONFIG)
_SUFFIXES = (".engine", ".plan", ".onnx")


def plain_engine_file(given: str) -> str:
    """The evaluated engine's file when `--engine_file` names the deploy one (TAO's
    `x.int8.deploy.engine`, as a resource with sdkCompatible asks): `x.int8.engine`."""
    head, sep, name = given.rpartition("/")
    suffix = next((s for s in _SUFFIXES if name.endswith(s)), "")
    stem = name[: -len(suffix)] if suffix else name
    if not stem.endswith(".deploy"):
        return given
    return f"{head}{sep}{stem[: -len('.deploy')]}{suffix}"


def engine_file(plain: str) -> str:
    """`x.int8.engine` -> `x.int8.deploy.engine` (path or s3://; only the name changes)."""
    head, sep, name = plain.rpartition("/")
    suffix = next((s for s in _SUFFIXES if name.endswith(s)), "")
    stem = name[: -len(suffix)] if suffix else name
    if stem.endswith(".deploy"):
        stem = stem[: -len(".deploy")]
    return f"{head}{sep}{stem}.deploy{suffix or '.engine'}"


def _ranges(model: onnx.ModelProto, known: dict[str, float]) -> dict[str, float]:
    """Scales for the tensors of `model` that `known` (name -> scale) lacks, where they follow
    exactly: copied bit for bit from the tensor whose values they hold."""
    tensors = select_tensors(model)
    producer = {out: node for node in model.graph.node for out in node.output}

    def range_of(name: str, depth: int = 0) -> float | None:
        source = tensors.source(name)
        for candidate in (name, source):
            if candidate in known:
                return known[candidate]
        node = producer.get(source)
        upsampling = node is not None and node.op_type == "ConvTranspose"
        if upsampling and node is not None and SDK_PAF_LAYER in node.name and depth < 8:
            return range_of(node.input[0], depth + 1)
        return None

    found = {name: range_of(name) for name in tensors.names if name not in known}
    return {name: value for name, value in found.items() if value is not None}


def cover_deploy_graph(cal_bin: Path, deploy_onnx: Path) -> list[str]:
    """Add to `cal_bin` the deploy graph's scales it lacks (module docstring); their names.

    Tensors left without a scale (none in BpNet's deploy graph) are logged:
    TensorRT would run their layers in higher precision.
    """
    cache = calibration_cache.read(cal_bin)
    model = onnx.load(str(deploy_onnx), load_external_data=False)
    added = _ranges(model, cache.scales)
    missing = [n for n in select_tensors(model).names if n not in cache.scales and n not in added]
    if missing:
        log.warning(
            "cal.bin has no scale for %d tensors of the deploy graph (e.g. %s): TensorRT runs "
            "their layers in higher precision",
            len(missing),
            missing[0],
        )
    if added:
        scales = {**cache.scales, **added}
        calibration_cache.write(cal_bin, dataclasses.replace(cache, scales=scales))
        log.info("cal.bin covers the deploy graph too: %d scales added (%s)", len(added),
                 ", ".join(added))  # fmt: skip
    return list(added)


def qdq_model(deploy_onnx: Path, cal_bin: Path, out: Path) -> Path:
    """The deploy graph quantized with cal.bin's ranges (TensorRT's flavour, as published)."""
    write_qdq_model(deploy_onnx, calibration_cache.read(cal_bin).amax(), out, flavour=EXPLICIT_INT8)
    return out


def fp16_model(deploy_onnx: Path, deploy_reference: Reference, work: Path) -> Path:
    """The deploy graph as an FP16 mixed-precision model (`convert.fp16`), as the export
    made the plain graph's: strongly typed fp16 engines are built from it."""
    out = work / "deploy.fp16.onnx"
    write_fp16_model(deploy_onnx, out, deploy_reference.inputs)
    return out


def reference(deploy_onnx: Path, plain: Reference) -> Reference:
    """The deploy graph's FP32 outputs (ONNX Runtime) on the plain reference's inputs."""
    runner = backend_by_name(ONNX_REFERENCE).load(deploy_onnx)
    try:
        outputs = run_batched(runner, plain.inputs)
    finally:
        runner.close()
    return Reference(plain.inputs, outputs, f"{plain.source} through the deploy ONNX in FP32")


def stage_serving(out: OutputSet, served: Served) -> list[tuple[Kind, str]]:
    """Its own Triton model (`bpnet_deploy`, beside `bpnet` in one repository) and nvinfer
    config, staged beside the engines; (kind, name) of each."""
    staged: list[tuple[Kind, str]] = []
    if served.facts.triton is not None:  # a platform Triton serves the artifact with
        model = served.triton_model()
        config_name = f"{TRITON_DIR}/{model.config_path()}"
        model_name = f"{TRITON_DIR}/{model.model_path()}"
        out.staged(config_name).write_text(triton.config_text(model))
        shutil.copyfile(served.artifact, out.staged(model_name))
        staged += [(Kind.DEPLOY_TRITON_CONFIG, config_name),
                   (Kind.DEPLOY_TRITON_MODEL, model_name)]  # fmt: skip
    nvinfer = served.nvinfer(out.final_location(DEEPSTREAM_FILE))
    out.staged(DEEPSTREAM_FILE).write_text(deepstream.config_text(nvinfer))
    return [*staged, (Kind.DEPLOY_DEEPSTREAM_CONFIG, DEEPSTREAM_FILE)]


@dataclass(frozen=True)
class DeployJob:
    """The deploy engine to build, from what the plain engine was built from."""

    backend: EngineBackend
    record: CompatibilityRecord | None
    #: The plain engine's request: its options, cal.bin (as the plain build left it),
    #: FP16 model and timing cache; the deploy engine's is this with its own graphs.
    plain: BuildRequest
    engine_file: str  # the plain engine's --engine_file
    onnx: Path  # the deploy ONNX, local
    reference: Reference  # the plain engine's reference
    gates: Mapping[str, float | None]
    qdq_given: bool  # the plain engine had a QDQ model: the deploy one gets its own
    cal_source: str | None  # where the plain engine's cal.bin came from
    staging: Path  # the output set's staging directory
    work: Path


@dataclass(frozen=True)
class DeployedEngine:
    engine: VerifiedEngine
    name: str  # its file name in the output set
    qdq: Path | None  # the deploy graph's QDQ model, when one was written


def build_deploy(job: DeployJob) -> DeployedEngine:
    """The SDK-compatible engine from the plain build's calibration, built and verified."""
    precision = job.plain.options.precision
    int8 = precision == "int8"
    cal = job.plain.calibration_cache
    qdq = None
    if int8:
        if cal is None or not cal.exists():
            raise UserError(
                f"--deploy_onnx: no cal.bin at {job.cal_source} after the plain build, so "
                "the deploy engine cannot share its calibration"
            )
        if job.qdq_given:
            qdq = qdq_model(job.onnx, cal, job.work / "deploy.qdq.onnx")
    deploy_file = artifact_file_name(
        engine_file(job.engine_file), job.backend.facts, job.record, precision
    )
    name = Path(deploy_file.rpartition("/")[2]).name
    deploy_reference = reference(job.onnx, job.reference)
    fp16 = None
    if precision == "fp16" and job.plain.fp16_model is not None:
        fp16 = fp16_model(job.onnx, deploy_reference, job.work)
    # cal.bin exists: never a second calibration (no tensorfile).
    request = dataclasses.replace(
        job.plain,
        onnx_path=job.onnx,
        engine_path=job.staging / name,
        calibration_cache=cal if int8 else None,
        calibration_data=None,
        qdq_model=qdq,
        fp16_model=fp16,
    )
    engine = build_and_verify(EngineJob(job.backend, request, deploy_reference, job.gates, True))
    return DeployedEngine(engine, name, qdq)
