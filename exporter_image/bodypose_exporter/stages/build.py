"""The build stage: shared artifacts in, one target's engine out, verified where it ran.

Runs on the target pool's own hardware. Inputs come from the export stage
(the FP32 ONNX, `reference.npz`, and for int8 `cal.bin`, the tensorfile or
the QDQ model), by path or s3:// URI. The engine is built by the chosen
backend (`engines`), run over the reference, and judged by the gates of its
precision (`verification`). An engine this pod cannot run (the backend's
`unable_to_run`: an engine built ahead of time, with no CUDA device of
its kind in this pod) is published as built and not run: its manifest's `verification` has
`run: false`, `outcome: "built, not run"` and the reason, no figure and no
`passed`. Then:

- passed: the engine and its `manifest.json` (hardware, build details,
  timings, verification figures and gates) are published together, the
  manifest last; a timing cache, and a cal.bin TensorRT calibrated itself,
  go back to where they were named (`_timing_cache_uri`: the one this GPU
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
same request with its own files, through the same `_build_and_verify`.

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

from bodypose_exporter.engines.base import (
    BackendFacts,
    BuildRequest,
    BuiltEngine,
    CompatibilityRecord,
    EngineBackend,
    EngineOptions,
    flag,
)
from bodypose_exporter.engines.compatibility import (
    check_gpu_flags,
    check_int8_class_flag,
    check_level,
)
from bodypose_exporter.engines.naming import (
    artifact_file_name,
    shared_timing_cache,
    timing_cache_beside,
)
from bodypose_exporter.engines.registry import backend_by_name
from bodypose_exporter.errors import NotFoundError, UserError
from bodypose_exporter.evaluation.ap_gate import ApDropError, max_ap_drop_for
from bodypose_exporter.manifest import (
    MANIFEST_NAME,
    REJECTED_MANIFEST_NAME,
    Kind,
    Manifest,
    artifact_path,
    file_name,
)
from bodypose_exporter.serving import bindings as onnx_bindings
from bodypose_exporter.stages import deploy as deploy_engine
from bodypose_exporter.stages import evaluation_step, serving_configs
from bodypose_exporter.storage.location import Location
from bodypose_exporter.storage.outputs import OutputSet
from bodypose_exporter.verification import latency
from bodypose_exporter.verification import reference as references
from bodypose_exporter.verification.agreement_gates import Verdict, VerificationError, enforce
from bodypose_exporter.verification.verify import verify

log = logging.getLogger(__name__)

DEFAULT_REFERENCE_IMAGES = 8


@dataclass(frozen=True)
class BuildInputs:
    """The export's artifacts a build reads, each a path or s3:// URI."""

    onnx: str
    reference: str | None = None  # reference.npz
    #: A local directory of images to verify on (overrides `reference`).
    reference_images: str | None = field(default=None, metadata=flag("--reference_images"))
    reference_image_count: int = DEFAULT_REFERENCE_IMAGES
    calibration_cache: str | None = None
    calibration_data: str | None = None
    qdq_model: str | None = None
    fp16_model: str | None = None  # the FP16 mixed-precision model (fp16 builds)
    #: Default where the backend keeps one (`BackendFacts.timing_cache`): beside the engine.
    timing_cache: str | None = field(default=None, metadata=flag("--timing_cache"))
    #: Where the timing caches every build of a kind of hardware shares live (a directory
    #: or s3:// prefix): `<dir>/<EngineBackend.timing_cache_key>.cache`.
    timing_cache_dir: str | None = field(default=None, metadata=flag("--timing_cache_dir"))
    #: The export's evaluation.json: turns the AP gate on. The set defaults to its own.
    eval_reference: str | None = None
    #: The SDK-compatible ONNX: also build its engine, from the same calibration.
    deploy_onnx: str | None = None
    #: Local copies of some of these URIs, already at hand (an export run staged them):
    #: used as they are, never downloaded again.
    local: Mapping[str, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class BuildStageRequest:
    engine: EngineOptions
    engine_file: str
    inputs: BuildInputs
    triton_repository: str | None = field(default=None, metadata=flag("--triton_repository"))
    deepstream_config: str | None = field(default=None, metadata=flag("--deepstream_config"))
    gates: tuple[tuple[str, float | None], ...] = ()
    #: None: publish the engine alone and leave the manifest to the caller
    #: (`bpnet-export --engine_file` records it in the export's manifest).
    manifest_name: str | None = MANIFEST_NAME
    publish_rejected: bool = True
    eval_annotations: str | None = None
    eval_images: str | None = None
    eval_max_images: int | None = None
    max_ap_drop: float | None = None  # AP points; None: the precision's default
    #: The identity the operator computed for the target this engine is for (what it is
    #: built for: pool, backend, options, image), recorded verbatim in the manifest
    #: (`targetIdentity`): the operator takes an artifact only for the identity it records.
    target_identity: str | None = None


class EngineApDropError(ApDropError):
    """`ApDropError` of a build: carries the rejected build's manifest, as VerificationError."""

    def __init__(self, message: str, manifest: dict[str, Any]) -> None:
        super().__init__(message)
        self.manifest: dict[str, Any] | None = manifest


@dataclass(frozen=True)
class BuildStageResult:
    manifest: dict[str, Any]
    verdict: Verdict
    published: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Fetched:
    """The build's inputs as local files (`_fetch_inputs`)."""

    onnx: Path
    reference: references.Reference
    cal: Path | None  # a writable copy: TensorRT may write the cache it calibrates
    data: Path | None
    qdq: Path | None
    fp16: Path | None
    timing: Path | None  # a writable copy, merged and put back after the build
    recorded: evaluation_step.RecordedReference | None
    #: The build's evaluation set, opened and checked against `recorded` before any build.
    evaluation: evaluation_step.CheckedSet | None
    deploy_onnx: Path | None


@dataclass
class _Build:
    """One run of the stage: what every step reads, and the manifest they fill."""

    request: BuildStageRequest
    backend: EngineBackend
    record: CompatibilityRecord | None
    out: OutputSet
    work: Path
    files: _Fetched
    manifest: Manifest = field(default_factory=lambda: Manifest(command="build"))


def _fetch(inputs: BuildInputs, uri: str, work: Path, what: str) -> Path:
    """A local file for `uri`: the copy at hand, else the path itself or a download."""
    return inputs.local.get(uri) or Location(uri).fetch(work, what)


def _fetch_optional(inputs: BuildInputs, uri: str | None, work: Path, what: str) -> Path | None:
    """A local copy of `uri`, or None when it is not given or does not exist yet."""
    if not uri:
        return None
    try:
        return _fetch(inputs, uri, work, what)
    except NotFoundError:
        log.info("no %s at %s yet", what, uri)
        return None


def _writable(fetched: Path | None, work: Path, name: str) -> Path:
    """A writable path in `work` for a file this build may update (cache, cal.bin)."""
    local = work / name
    if fetched is not None and fetched != local:
        local.write_bytes(fetched.read_bytes())
    return local


def _reference(inputs: BuildInputs, onnx_path: Path, work: Path) -> references.Reference:
    if inputs.reference_images:
        paths = references.image_paths(
            Path(inputs.reference_images).expanduser(), inputs.reference_image_count
        )
        height, width = references.input_hw(onnx_path)
        return references.from_images(onnx_path, paths, height, width)
    if not inputs.reference:
        raise UserError("verification needs --reference (reference.npz) or --reference_images")
    return references.from_npz(_fetch(inputs, inputs.reference, work, "reference"))


def _fetch_inputs(request: BuildStageRequest, timing_uri: str | None, work: Path) -> _Fetched:
    inputs = request.inputs

    def given(uri: str | None, what: str) -> Path | None:
        return _fetch(inputs, uri, work, what) if uri else None

    onnx = _fetch(inputs, inputs.onnx, work, "ONNX model")
    cal = None
    if inputs.calibration_cache:
        found = _fetch_optional(inputs, inputs.calibration_cache, work, "calibration cache")
        cal = _writable(found, work, "cal.bin")
    timing = None
    if timing_uri:
        timing = _writable(
            _fetch_optional(inputs, timing_uri, work, "timing cache"), work, "timing.cache"
        )
    evaluation = given(inputs.eval_reference, "evaluation reference")
    recorded = (
        evaluation_step.read_reference(evaluation, inputs.eval_reference)
        if evaluation is not None and inputs.eval_reference
        else None
    )
    checked = None
    if recorded is not None:
        (work / "evaluation").mkdir()  # S3 downloads land there
        eval_request = recorded.request(
            request.eval_annotations, request.eval_images, request.eval_max_images,
            request.max_ap_drop,
        )  # fmt: skip
        checked = evaluation_step.open_checked_set(eval_request, recorded, work / "evaluation")
    return _Fetched(
        onnx=onnx,
        reference=_reference(inputs, onnx, work),
        cal=cal,
        data=given(inputs.calibration_data, "calibration tensorfile"),
        qdq=given(inputs.qdq_model, "QDQ model"),
        fp16=_fetch_optional(inputs, inputs.fp16_model, work, "FP16 model"),
        timing=timing,
        recorded=recorded,
        evaluation=checked,
        deploy_onnx=given(inputs.deploy_onnx, "deploy ONNX model"),
    )


def _target(
    request: BuildStageRequest, backend: EngineBackend
) -> tuple[str, CompatibilityRecord | None]:
    """Before any download: the options checked against the backend and this machine, and
    the artifact's name for what it is (its suffix, its compatibility record's tag)."""
    options = request.engine
    check_level(options.hardware_compatibility, backend.facts)
    check_gpu_flags(
        bool(options.expected_gpu_product or options.expected_compute_capability),
        backend.facts,
    )
    check_int8_class_flag(options.int8_instruction_set, options.precision, backend.facts)
    record = backend.target(options, backend.describe())
    location = artifact_file_name(request.engine_file, backend.facts, record, options.precision)
    if location != request.engine_file:
        log.info("the %s artifact is written as %s", backend.facts.name, location)
    return location, record


def _check_request(request: BuildStageRequest) -> None:
    """What can be refused before any download or build."""
    if request.engine.max_batch_size < 1:
        raise UserError(f"--max_batch_size must be at least 1, got {request.engine.max_batch_size}")
    given = [
        flag
        for flag, value in (
            ("--eval_annotations", request.eval_annotations),
            ("--eval_images", request.eval_images),
            ("--eval_max_images", request.eval_max_images),
            ("--max_ap_drop", request.max_ap_drop),
        )
        if value is not None
    ]
    if given and not request.inputs.eval_reference:
        raise UserError(
            f"{', '.join(given)}: the AP gate needs --eval_reference (the export's "
            "evaluation.json, the FP32 model's AP to compare the engine's with)"
        )
    if request.inputs.eval_reference:
        max_ap_drop_for(request.engine.precision, request.max_ap_drop)
    int8 = request.engine.precision == "int8"
    if request.inputs.deploy_onnx and int8 and not request.inputs.calibration_cache:
        raise UserError(
            "--deploy_onnx with --data_type int8 needs --cal_cache_file: the one calibration "
            "both engines are built from"
        )


def _plain_engine_file(request: BuildStageRequest) -> BuildStageRequest:
    """With --deploy_onnx, `--engine_file x.deploy.engine` names the deploy engine: the
    evaluated one is x.engine."""
    if not request.inputs.deploy_onnx:
        return request
    plain = deploy_engine.plain_engine_file(request.engine_file)
    if plain == request.engine_file:
        return request
    log.info("the engine of --onnx is written as %s, the deploy one as %s",
             plain, request.engine_file)  # fmt: skip
    return dataclasses.replace(request, engine_file=plain)


def _timing_cache_uri(request: BuildStageRequest, backend: EngineBackend) -> str | None:
    """The timing cache this build reads before it builds and writes back after: the one
    `--timing_cache` names; else, under `--timing_cache_dir`, the one every build on this
    GPU model with this TensorRT version shares (the key needs the device, which only the
    pod that builds can read); else one beside the engine. None for a backend with none.

    Two builds on the same GPU model at once each merge into their own copy, and the later
    write-back wins (not every S3 store offers conditional writes): an entry lost costs a
    re-timing in a later build, never a wrong engine (TensorRT times what it misses).
    """
    inputs = request.inputs
    if inputs.timing_cache is not None:
        return inputs.timing_cache
    if not backend.facts.timing_cache:
        return None
    key = backend.timing_cache_key(backend.describe()) if inputs.timing_cache_dir else None
    if inputs.timing_cache_dir and key:
        return shared_timing_cache(inputs.timing_cache_dir, key)
    return timing_cache_beside(request.engine_file)


def run_build(request: BuildStageRequest) -> BuildStageResult:
    _check_request(request)
    request = _plain_engine_file(request)
    backend = backend_by_name(request.engine.backend)
    engine_file, record = _target(request, backend)
    timing_uri = _timing_cache_uri(request, backend)
    with (
        OutputSet(engine_file) as out,
        tempfile.TemporaryDirectory(prefix="bpnet-build-") as tmp,
    ):
        work = Path(tmp)
        manifest = Manifest(command="build")
        with manifest.timed("fetch"):
            files = _fetch_inputs(request, timing_uri, work)
        build = _Build(request, backend, record, out, work, files, manifest)
        name = Path(engine_file.rpartition("/")[2]).name
        built, verdict = _build_and_verify(build, _plain(build, name), files.reference, "")
        _record_build(build, built, verdict)
        if not verdict.passed:
            _reject(build, verdict, "")
        if files.recorded is not None and verdict.not_run is None:
            _gate_accuracy(build, built, name)
        elif files.recorded is not None:
            build.manifest.details["evaluation"] = {"run": False, "notRunReason": verdict.not_run}
        deploy = _build_deploy(build, files.deploy_onnx) if files.deploy_onnx else None
        names = [name, *_stage_engine(build, built, name)]
        if deploy is not None:
            names += _publishable_deploy(build, deploy)
        if request.triton_repository or request.deepstream_config:
            # The extra copies first: they read the artifact from the staging directory.
            served = _served(build, built, out.final_location(name), files.onnx, files.qdq)
            if request.triton_repository:
                serving_configs.write_triton_repository(request.triton_repository, served)
            if request.deepstream_config:
                serving_configs.write_deepstream_config(request.deepstream_config, served)
        if request.manifest_name:
            manifest.write(out.staged(request.manifest_name))
            names.append(request.manifest_name)
        published = out.publish(names)
        _put_back(build, built, timing_uri)
    return BuildStageResult(manifest=manifest.to_dict(), verdict=verdict, published=published)


def _plain(build: _Build, name: str) -> BuildRequest:
    """The backend's request for the engine of --onnx: the options, these files."""
    files = build.files
    return BuildRequest(
        options=build.request.engine,
        onnx_path=files.onnx,
        engine_path=build.out.staged(name),
        calibration_cache=files.cal,
        calibration_data=files.data,
        qdq_model=files.qdq,
        fp16_model=files.fp16,
        timing_cache=files.timing,
    )


def _build_and_verify(
    build: _Build, request: BuildRequest, reference: references.Reference, which: str
) -> tuple[BuiltEngine, Verdict]:
    """Build one engine and judge it against `reference` (`which`: "" or "Deploy")."""
    backend = build.backend
    precision, _ = backend.facts.built_precision(request.options.precision)  # what it computes
    with build.manifest.timed(f"build{which}"):
        built = backend.build(request)
    log.info("built the %s %s %sengine in %.1f s", precision, backend.facts.name,
             "deploy " if which else "", build.manifest.timings[f"build{which}"])  # fmt: skip
    not_run = backend.unable_to_run(built.hardware)
    if not_run is not None:
        log.info("built, not run: %s", not_run)
        if not which:
            build.manifest.details["latency"] = {"measured": False, "reason": not_run}
        return built, Verdict(precision, {}, {}, (), not_run=not_run)
    with build.manifest.timed(f"verify{which}"):
        runner = backend.load(built.path)
        try:
            verdict = verify(runner, reference, precision, dict(build.request.gates))
            if verdict.passed and not which:
                build.manifest.details["latency"] = _time(build, runner, reference, built)
        finally:
            runner.close()
    log.info(
        "verification on %s: %s (%s)",
        reference.source,
        ", ".join(f"{k} {v:.4g}" for k, v in verdict.figures.items()),
        "passed" if verdict.passed else "FAILED",
    )
    return built, verdict


def _time(
    build: _Build, runner: Any, reference: references.Reference, built: BuiltEngine
) -> dict[str, Any]:
    """The verified engine's latency on this node (`verification.latency`), logged."""
    with build.manifest.timed("latency"):
        timed = latency.measure(runner, reference.inputs[0], build.request.engine.max_batch_size)
    hardware = built.hardware
    timed["device"] = str(hardware.get("gpuName") or hardware.get("cpuModel") or "unknown")
    log.info("latency on %s: batch 1 median %.2f ms (p90 %.2f), batch %d median %.2f ms, "
             "%.1f images/s", timed["device"], timed["batch1"]["medianMs"],
             timed["batch1"]["p90Ms"], timed["batchMax"]["batch"],
             timed["batchMax"]["medianMs"], timed["batchMax"]["imagesPerSecond"] or 0)  # fmt: skip
    return timed


def _record_build(build: _Build, built: BuiltEngine, verdict: Verdict) -> None:
    """What was asked, what was built and how it agreed: the manifest's details."""
    inputs = build.request.inputs
    build.manifest.inputs = {
        "onnx": inputs.onnx,
        "reference": inputs.reference_images or inputs.reference,
        "calibrationCache": inputs.calibration_cache,
        "calibrationData": inputs.calibration_data,
        "qdqModel": inputs.qdq_model,
        "fp16Model": inputs.fp16_model,
    }
    facts, options = build.backend.facts, build.request.engine
    build.manifest.details.update(
        {
            "backend": facts.name,
            "runtime": facts.runtime,
            **precision_fields(facts, options.precision),
            "maxBatchSize": options.max_batch_size,
            "hardware": built.hardware,
            "build": built.details,
            "verification": {**verdict.as_dict(), "reference": build.files.reference.source},
        }
    )
    if build.record is not None:
        build.manifest.details["compatibility"] = build.record.as_dict()
    if build.request.target_identity is not None:
        build.manifest.details["targetIdentity"] = build.request.target_identity


def precision_fields(facts: BackendFacts, asked: str) -> dict[str, str]:
    """`precision`: what the artifact computes in; where the backend builds what was asked
    as another (`BackendFacts.built_as`), `requestedPrecision` and `precisionReason` too."""
    built, why = facts.built_precision(asked)
    if why is None:
        return {"precision": asked}
    return {"precision": built, "requestedPrecision": asked, "precisionReason": why}


def _reject(build: _Build, verdict: Verdict, prefix: str) -> None:
    """A gate failed: the figures are kept as manifest.rejected.json, no engine goes out."""
    _publish_rejected(build)
    try:
        enforce(verdict, build.backend.facts.name)
    except VerificationError as exc:
        if prefix:
            exc.args = (f"{prefix}{exc}",)
        exc.manifest = build.manifest.to_dict()
        raise


def _publish_rejected(build: _Build) -> None:
    if build.request.publish_rejected:
        build.manifest.write(build.out.staged(REJECTED_MANIFEST_NAME))
        build.out.publish([REJECTED_MANIFEST_NAME])


def _gate_accuracy(build: _Build, built: BuiltEngine, name: str) -> None:
    """OKS AP on the export's evaluation set against the FP32 model's; rejected past it."""
    request, recorded, checked = build.request, build.files.recorded, build.files.evaluation
    assert recorded is not None and checked is not None
    with build.manifest.timed("evaluate"):
        block, verdict = evaluation_step.gate_engine(
            checked,
            recorded,
            build.backend.facts.name,
            built.path,
            build.out.final_location(name),
            request.engine.precision,
            references.input_hw(build.files.onnx),
        )
    log.info("OKS AP: %s (%s)", verdict.message, "passed" if verdict.passed else "FAILED")
    build.manifest.details["evaluation"] = block
    if not verdict.passed:
        _publish_rejected(build)
        raise EngineApDropError(verdict.message, build.manifest.to_dict())


def _stage_engine(build: _Build, built: BuiltEngine, name: str) -> list[str]:
    """List the engine and stage its serving configs beside it; the names staged."""
    out, manifest = build.out, build.manifest
    manifest.add_artifact(Kind.ENGINE, out.staged(name), out.final_location(name))
    manifest.artifacts[-1]["runtime"] = build.backend.facts.name
    names = _list_companions(build, built)
    served = _served(build, built, out.final_location(name), build.files.onnx, build.files.qdq)
    for kind, staged in serving_configs.stage_beside(out, served):
        manifest.add_artifact(kind, out.staged(staged), out.final_location(staged))
        names.append(staged)
    manifest.details["serving"] = _serving_entry(out, [name, *names])
    return names


def _list_companions(build: _Build, built: BuiltEngine) -> list[str]:
    """What the backend wrote beside the artifact, listed in the manifest; their names."""
    names = []
    for kind, path in built.companions:
        staged = path.relative_to(build.out.staging).as_posix()
        build.manifest.add_artifact(Kind(kind), path, build.out.final_location(staged))
        names.append(staged)
    return names


def _build_deploy(build: _Build, deploy_onnx: Path) -> serving_configs.Served:
    """The SDK-compatible engine from the plain build's calibration, built and verified (its
    artifacts are listed by `_publishable_deploy`, after the plain engine's)."""
    request, files, out = build.request, build.files, build.out
    int8 = request.engine.precision == "int8"
    qdq = None
    if int8:
        if files.cal is None or not files.cal.exists():
            raise UserError(
                f"--deploy_onnx: no cal.bin at {request.inputs.calibration_cache} after the "
                "plain build, so the deploy engine cannot share its calibration"
            )
        if request.inputs.qdq_model:
            qdq = deploy_engine.qdq_model(deploy_onnx, files.cal, build.work / "deploy.qdq.onnx")
    deploy_file = artifact_file_name(
        deploy_engine.engine_file(request.engine_file), build.backend.facts, build.record,
        request.engine.precision,
    )  # fmt: skip
    name = Path(deploy_file.rpartition("/")[2]).name
    deploy_reference = deploy_engine.reference(deploy_onnx, files.reference)
    fp16 = None
    if request.engine.precision == "fp16" and files.fp16 is not None:
        fp16 = deploy_engine.fp16_model(deploy_onnx, deploy_reference, build.work)
    # cal.bin exists: never a second calibration (no tensorfile).
    deploy_request = dataclasses.replace(
        _plain(build, name),
        onnx_path=deploy_onnx,
        calibration_cache=files.cal if int8 else None,
        calibration_data=None,
        qdq_model=qdq,
        fp16_model=fp16,
    )
    built, verdict = _build_and_verify(build, deploy_request, deploy_reference, "Deploy")
    location = out.final_location(name)
    build.manifest.details["deploy"] = {
        "path": location,
        "onnx": request.inputs.deploy_onnx,
        "calibration": request.inputs.calibration_cache if int8 else None,  # the plain one's
        "build": built.details,
        "verification": {**verdict.as_dict(), "reference": deploy_reference.source},
    }
    if not verdict.passed:
        _reject(build, verdict, "the SDK-compatible (deploy) engine: ")
    if "evaluation" in build.manifest.details:
        build.manifest.details["evaluation"]["deployEngine"] = location
    return dataclasses.replace(
        _served(build, built, location, deploy_onnx, qdq),
        onnx_source=str(request.inputs.deploy_onnx),
        model_name=deploy_engine.TRITON_MODEL,
    )


def _publishable_deploy(build: _Build, served: serving_configs.Served) -> list[str]:
    """List the deploy engine and its serving configs in the manifest; their names."""
    out, manifest = build.out, build.manifest
    name = served.artifact_location.rpartition("/")[2]
    manifest.add_artifact(Kind.DEPLOY_ENGINE, out.staged(name), out.final_location(name))
    manifest.artifacts[-1]["runtime"] = served.facts.name
    names = [name]
    entry = {"deepstreamConfig": out.final_location(deploy_engine.DEEPSTREAM_FILE)}
    for kind, staged in deploy_engine.stage_serving(out, served):
        manifest.add_artifact(kind, out.staged(staged), out.final_location(staged))
        names.append(staged)
        if kind == Kind.DEPLOY_TRITON_CONFIG:
            entry = {"tritonModel": deploy_engine.TRITON_MODEL,
                     "tritonConfig": out.final_location(staged), **entry}  # fmt: skip
    manifest.details["deploy"]["serving"] = entry
    return names


def _served(
    build: _Build, built: BuiltEngine, location: str, onnx_path: Path, qdq: Path | None
) -> serving_configs.Served:
    request = build.request
    built_from_qdq = built.details.get("int8Source") == "qdq" and request.inputs.qdq_model
    record = build.record.as_dict() if build.record is not None else {}
    return serving_configs.Served(
        facts=build.backend.facts,
        precision=request.engine.precision,
        max_batch_size=request.engine.max_batch_size,
        bindings=onnx_bindings.read(qdq if built_from_qdq and qdq is not None else onnx_path),
        artifact=built.path,
        artifact_location=location,
        onnx_source=str(request.inputs.qdq_model) if built_from_qdq else request.inputs.onnx,
        cal_bin=request.inputs.calibration_cache if request.engine.precision == "int8" else None,
        compute_capability=record.get("computeCapability"),
    )


def _serving_entry(out: OutputSet, names: list[str]) -> dict[str, Any]:
    """Where the serving configs are (the operator puts this in the target's status)."""
    entry = {"deepstreamConfig": out.final_location(file_name(Kind.DEEPSTREAM_CONFIG))}
    config = next((n for n in names if n.endswith("config.pbtxt")), None)
    if config is not None:
        model_dir = config.rpartition("/")[0]
        entry = {
            "tritonRepository": out.final_location(serving_configs.TRITON_DIR),
            "tritonModel": model_dir.rpartition("/")[2],
            "tritonConfig": out.final_location(config),
            **entry,
        }
    return entry


def _put_back(build: _Build, built: BuiltEngine, timing_uri: str | None) -> None:
    """The timing cache, and a cal.bin the backend calibrated itself, back where named."""
    files, inputs = build.files, build.request.inputs
    if files.timing is not None and timing_uri and files.timing.exists():
        Location(timing_uri).put(files.timing)
    calibrated = built.details.get("int8Source") == "tensorfile"
    if files.cal is not None and inputs.calibration_cache and calibrated and files.cal.exists():
        Location(inputs.calibration_cache).put(files.cal)


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
