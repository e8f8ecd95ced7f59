"""The build stage: shared artifacts in, one target's engine out, verified where it ran.

`run_build` is a pipeline of steps, each in its own module, each taking a typed
input and returning a typed result; S3 only at its two edges:

    build_request.prepare      request   -> Target          checks, backend, name (no download)
    build_fetch.fetch_inputs   Target    -> FetchedInputs   every input as a local file (S3 in)
    build_engine.build_and_verify  EngineJob -> VerifiedEngine  built, verified, timed; which
                                                            graph it came from, what it updated
    evaluation_step.gate_engine                             the AP gate, with --eval_reference
    deploy.build_deploy        DeployJob -> DeployedEngine  the SDK-compatible engine
    serving_configs.for_engine VerifiedEngine -> Served     what its serving configs say
    build_publish.publish / reject                          the engine and its manifest, or
                                                            manifest.rejected.json (S3 out)

Runs on the target pool's own hardware. Inputs come from the export stage
(the FP32 ONNX, `reference.npz`, and for int8 `cal.bin`, the tensorfile or
the QDQ model), by path or s3:// URI. The engine is built by the chosen
backend (`engines`), run over the reference, and judged by the gates of its
precision (`verification`). An engine this pod cannot run (the backend's
`capabilities.BuiltAheadOfTime`: an engine built ahead of time, with no CUDA device of
its kind in this pod) is published as built and not run: its manifest's `verification` has
`run: false`, `outcome: "built, not run"` and the reason, no figure and no
`passed`. Then:

- passed: the engine and its `manifest.json` (hardware, build details,
  timings, verification figures and gates) are published together, the
  manifest last; a timing cache, and a cal.bin TensorRT calibrated itself,
  go back to where they were named (`build_request`: the one this GPU
  model and TensorRT version share under `--timing_cache_dir`, read before
  the build, merged into by it and written back);
- failed: no engine is published. The manifest, with `verification.passed`
  false, is published as `manifest.rejected.json` (unless the caller keeps
  it, `publish_rejected=False`), so the figures are kept either way while
  `manifest.json`, the operator's sign of a complete target, never appears;
  `VerificationError` (exit code 3) names the failed gates.

With `eval_reference` (the export's evaluation.json) the verified engine is
then evaluated on the same COCO set with the same decoding (`stages.evaluation_step`)
and gated on its AP drop; a failed gate is a rejection like a failed
verification (`manifest.rejected.json`, `ApDropError`: exit 3,
`AccuracyDropTooLarge`). With `deploy_onnx` the SDK-compatible engine is built
after the plain one passed, from the same calibration (`stages.deploy`): the
same request with its own files, through the same `build_and_verify`.

`build_from_export` runs this stage on the files an export run has just
staged (`bpnet-export --engine_file`, `stages.export`): nothing is
downloaded again, and the export's manifest records the engine.

Nothing here asks which backend it holds: what differs is the backend's
facts (`engines.base.BackendFacts`) and its `target` (the compatibility
record, the hardware checks).
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bodypose_exporter.engines.base import BuildRequest
from bodypose_exporter.errors import UserError
from bodypose_exporter.manifest import Kind, Manifest, artifact_path
from bodypose_exporter.stages import build_publish, deploy, evaluation_step, serving_configs
from bodypose_exporter.stages.build_engine import (
    EngineJob,
    Updated,
    VerifiedEngine,
    build_and_verify,
)
from bodypose_exporter.stages.build_fetch import FetchedInputs, fetch_inputs
from bodypose_exporter.stages.build_publish import (
    EngineApDropError,
    Publication,
    precision_fields,
)
from bodypose_exporter.stages.build_request import (
    DEFAULT_REFERENCE_IMAGES,
    BuildInputs,
    BuildStageRequest,
    Target,
    prepare,
)
from bodypose_exporter.storage.outputs import OutputSet
from bodypose_exporter.verification import reference as references
from bodypose_exporter.verification.agreement_gates import Verdict, VerificationError

log = logging.getLogger(__name__)

# The stage's public face, as the command modules and the export import it.
__all__ = [
    "DEFAULT_REFERENCE_IMAGES",
    "BuildInputs",
    "BuildStageRequest",
    "BuildStageResult",
    "EngineApDropError",
    "EngineOutcome",
    "build_from_export",
    "precision_fields",
    "run_build",
]


@dataclass(frozen=True)
class BuildStageResult:
    manifest: dict[str, Any]
    verdict: Verdict
    published: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Run:
    """One run of the stage: what the steps after the fetch read."""

    request: BuildStageRequest
    target: Target
    out: OutputSet
    work: Path
    files: FetchedInputs
    manifest: Manifest


def run_build(request: BuildStageRequest) -> BuildStageResult:
    request = _plain_engine_file(request)
    target = prepare(request)
    manifest = Manifest(command="build")
    with (
        OutputSet(target.location) as out,
        tempfile.TemporaryDirectory(prefix="bpnet-build-") as tmp,
    ):
        with manifest.timed("fetch"):
            files = fetch_inputs(request, target, Path(tmp))
        run = _Run(request, target, out, Path(tmp), files, manifest)
        plain = _plain_request(run)
        job = EngineJob(
            target.backend, plain, files.reference, dict(request.gates),
            latency_budget=request.latency_budget,
        )  # fmt: skip
        engine = build_and_verify(job)
        if engine.record is not None:  # built from the backend's fallback: its own record
            target = dataclasses.replace(target, record=engine.record)
            run = dataclasses.replace(run, target=target)
        build_publish.record_build(manifest, request, target, engine)
        if not engine.verdict.passed:
            build_publish.reject(out, manifest, request, target, engine.verdict)
        _gate_accuracy(run, engine)
        deployed = _deploy(run, plain) if files.deploy_onnx is not None else None
        location = out.final_location(target.name)
        graphs = (files.onnx, files.qdq)
        served = serving_configs.for_engine(
            engine, request, target.backend.facts, target.record, location, graphs
        )
        publication = Publication(request, target.name, engine, served, deployed,
                                  _put_back(run, engine))  # fmt: skip
        published = build_publish.publish(out, manifest, publication)
    return BuildStageResult(manifest=manifest.to_dict(), verdict=engine.verdict,
                            published=published)  # fmt: skip


def _plain_engine_file(request: BuildStageRequest) -> BuildStageRequest:
    """With --deploy_onnx, `--engine_file x.deploy.engine` names the deploy engine: the
    evaluated one is x.engine."""
    if not request.inputs.deploy_onnx:
        return request
    plain = deploy.plain_engine_file(request.engine_file)
    if plain == request.engine_file:
        return request
    log.info("the engine of --onnx is written as %s, the deploy one as %s",
             plain, request.engine_file)  # fmt: skip
    return dataclasses.replace(request, engine_file=plain)


def _plain_request(run: _Run) -> BuildRequest:
    """The backend's request for the engine of --onnx: the options, the fetched files."""
    files = run.files
    return BuildRequest(
        options=run.request.engine,
        onnx_path=files.onnx,
        engine_path=run.out.staged(run.target.name),
        calibration_cache=files.cal,
        calibration_data=files.data,
        qdq_model=files.qdq,
        fp16_model=files.fp16,
        timing_cache=files.timing,
    )


def _gate_accuracy(run: _Run, engine: VerifiedEngine) -> None:
    """OKS AP on the export's evaluation set against the FP32 model's; rejected past it.
    An engine this pod could not run is not evaluated either, and says why."""
    evaluation, manifest = run.files.evaluation, run.manifest
    if evaluation is None:
        return
    if engine.verdict.not_run is not None:
        manifest.details["evaluation"] = {"run": False, "notRunReason": engine.verdict.not_run}
        return
    with manifest.timed("evaluate"):
        block, verdict = evaluation_step.gate_engine(
            evaluation.checked,
            evaluation.recorded,
            run.target.backend.facts.name,
            engine.built.path,
            run.out.final_location(run.target.name),
            run.request.engine.precision,
            references.input_hw(run.files.onnx),
        )
    log.info("OKS AP: %s (%s)", verdict.message, "passed" if verdict.passed else "FAILED")
    manifest.details["evaluation"] = block
    if not verdict.passed:
        build_publish.reject_accuracy(run.out, manifest, run.request, verdict.message)


def _deploy(run: _Run, plain: BuildRequest) -> serving_configs.Served:
    """The SDK-compatible engine (`stages.deploy`), recorded, rejected if it failed; what
    its serving configs say."""
    request, files, manifest = run.request, run.files, run.manifest
    assert files.deploy_onnx is not None
    inputs = request.inputs
    job = deploy.DeployJob(
        run.target.backend, run.target.record, plain, request.engine_file, files.deploy_onnx,
        files.reference, dict(request.gates), bool(inputs.qdq_model), inputs.calibration_cache,
        run.out.staging, run.work,
    )  # fmt: skip
    deployed = deploy.build_deploy(job)
    engine = deployed.engine
    manifest.timings.update(engine.timings)
    location = run.out.final_location(deployed.name)
    int8 = request.engine.precision == "int8"
    manifest.details["deploy"] = {
        "path": location,
        "onnx": inputs.deploy_onnx,
        "calibration": inputs.calibration_cache if int8 else None,  # the plain one's
        "build": engine.built.details,
        "verification": {**engine.verdict.as_dict(), "reference": engine.reference},
    }
    if not engine.verdict.passed:
        build_publish.reject(run.out, manifest, request, run.target, engine.verdict,
                             "the SDK-compatible (deploy) engine: ")  # fmt: skip
    if "evaluation" in manifest.details:
        manifest.details["evaluation"]["deployEngine"] = location
    served = serving_configs.for_engine(
        engine, request, run.target.backend.facts, run.target.record, location,
        (files.deploy_onnx, deployed.qdq),
    )  # fmt: skip
    return dataclasses.replace(
        served, onnx_source=str(inputs.deploy_onnx), model_name=deploy.TRITON_MODEL
    )


def _put_back(run: _Run, engine: VerifiedEngine) -> tuple[tuple[Path, str], ...]:
    """The files the build updated, and where each goes back: the timing cache, and a
    cal.bin the backend calibrated itself."""
    files, back = run.files, []
    if Updated.TIMING_CACHE in engine.updated and files.timing and run.target.timing_cache:
        back.append((files.timing, run.target.timing_cache))
    cal_uri = run.request.inputs.calibration_cache
    if Updated.CALIBRATION_CACHE in engine.updated and files.cal is not None and cal_uri:
        back.append((files.cal, cal_uri))
    return tuple(back)


# --- `bpnet-export --engine_file`: the build stage right after the export, in one run ---


@dataclass(frozen=True)
class EngineOutcome:
    """What `build_from_export` gives the export to record in its manifest."""

    entry: dict[str, Any]  # the manifest's `engine` entry, passed or rejected
    artifacts: list[dict[str, Any]]  # to list beside the export's (none when rejected)
    #: A failed gate: the export records the entry, publishes, then fails the run with it.
    failure: VerificationError | EngineApDropError | None = None


def build_from_export(
    request: BuildStageRequest, export_manifest: dict[str, Any], local: Mapping[str, Path]
) -> EngineOutcome:
    """Build and verify an engine from the export's artifacts, as staged (`local`: each
    published location's local copy), passed or refused by its gates.

    The flow of `tao model bpnet export --engine_file`: `request` carries the
    engine's options and file; its inputs are the export's own artifacts (and
    its evaluation.json and deploy graph, when it wrote them).
    """
    onnx = artifact_path(export_manifest, Kind.ONNX)
    reference = artifact_path(export_manifest, Kind.REFERENCE)
    if onnx is None or reference is None:
        raise UserError("the export's manifest names no ONNX model or reference to build from")
    inputs = dataclasses.replace(
        request.inputs,
        onnx=onnx,
        reference=reference,
        calibration_cache=artifact_path(export_manifest, Kind.CALIBRATION_CACHE)
        or request.inputs.calibration_cache,
        qdq_model=artifact_path(export_manifest, Kind.QDQ_MODEL),
        fp16_model=artifact_path(export_manifest, Kind.FP16_ONNX),
        eval_reference=artifact_path(export_manifest, Kind.EVALUATION),
        deploy_onnx=artifact_path(export_manifest, Kind.DEPLOY_ONNX),
        local=local,
    )
    stage = dataclasses.replace(request, inputs=inputs, manifest_name=None, publish_rejected=False)
    try:
        result = run_build(stage)
    except (VerificationError, EngineApDropError) as exc:
        return EngineOutcome(_engine_entry(request, exc.manifest or {}, None), [], exc)
    artifacts: list[dict[str, Any]] = result.manifest["artifacts"]
    return EngineOutcome(_engine_entry(request, result.manifest, artifacts[0]), artifacts)


def _engine_entry(
    request: BuildStageRequest, build: dict[str, Any], artifact: dict[str, Any] | None
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "backend": request.engine.backend,
        "precision": build.get("precision", request.engine.precision),
        **{k: build[k] for k in ("requestedPrecision", "precisionReason") if k in build},
        "maxBatchSize": request.engine.max_batch_size,
        "hardware": build.get("hardware", {}),
        "build": build.get("build", {}),
        "verification": build.get("verification", {}),
        "timingsSeconds": build.get("timingsSeconds", {}),
        "runtime": build.get("runtime"),
        "compatibility": build.get("compatibility"),
        "serving": build.get("serving"),
        "evaluation": build.get("evaluation"),
        "latency": build.get("latency"),
        "deploy": build.get("deploy"),
    }
    if artifact is not None:
        entry["path"] = artifact["path"]
    else:
        entry["rejectedPath"] = request.engine_file
    return entry
