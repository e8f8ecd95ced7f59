"""The build stage: shared artifacts in, one target's verified engine out.

Runs on the target pool's own hardware. Inputs come from the export stage
(the FP32 ONNX, `reference.npz`, and for int8 `cal.bin`, the tensorfile or
the QDQ model), by path or s3:// URI. The engine is built by the chosen
backend (`engines`), run over the reference, and judged by the gates of its
precision (`verification`). Then:

- passed: the engine and its `manifest.json` (hardware, build details,
  timings, verification figures and gates) are published together, the
  manifest last; a timing cache, and a cal.bin TensorRT calibrated itself,
  go back to where they were named;
- failed: no engine is published. The manifest, with `verification.passed`
  false, is published as `manifest.rejected.json` (unless the caller keeps
  it, `publish_rejected=False`), so the figures are kept either way while
  `manifest.json`, the operator's sign of a complete target, never appears;
  `VerificationError` (exit code 3) names the failed gates.

With `eval_reference` (the export's evaluation.json) the verified engine is
then evaluated on the same COCO set with the same decoding (`stages.accuracy`)
and gated on its AP drop; a failed gate is a rejection like a failed
verification (`manifest.rejected.json`, `ApDropError`: exit 3,
`AccuracyDropTooLarge`). With `deploy_onnx` the SDK-compatible engine is built
after the plain one passed, from the same calibration (`stages.deploy`).

`build_after_export` runs this stage on an export's published artifacts
(`bpnet-export --engine_file`) and records the engine in the export's
manifest.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bodypose_exporter.engines import BuildRequest, backend_by_name
from bodypose_exporter.engines.compatibility import (
    CompatibilityRecord,
    check_expected_gpu,
    check_level,
)
from bodypose_exporter.engines.naming import RUNTIMES, artifact_file_name, timing_cache_beside
from bodypose_exporter.errors import NotFoundError, UserError
from bodypose_exporter.evaluation.gate import ApDropError, max_ap_drop_for
from bodypose_exporter.manifest import MANIFEST_NAME, Manifest
from bodypose_exporter.serving import bindings as onnx_bindings
from bodypose_exporter.serving.deepstream import FILE_NAME as DEEPSTREAM_FILE
from bodypose_exporter.stages import accuracy, serving
from bodypose_exporter.stages import deploy as deploy_engine
from bodypose_exporter.storage import inputs as input_files
from bodypose_exporter.storage import s3
from bodypose_exporter.storage.outputs import OutputSet
from bodypose_exporter.verification import reference as references
from bodypose_exporter.verification.gates import Verdict, VerificationError, enforce
from bodypose_exporter.verification.verify import verify

log = logging.getLogger(__name__)

REJECTED_MANIFEST_NAME = "manifest.rejected.json"
DEFAULT_REFERENCE_IMAGES = 8


@dataclass(frozen=True)
class BuildStageRequest:
    onnx: str
    engine_file: str
    reference: str | None = None  # reference.npz (path or s3://)
    reference_images: str | None = None  # a local directory of images (overrides `reference`)
    reference_image_count: int = DEFAULT_REFERENCE_IMAGES
    precision: str = "fp32"
    backend: str = "tensorrt"
    max_batch_size: int = 1
    max_workspace_size: int = 2 << 30
    strict_types: bool = False
    calibration_cache: str | None = None
    calibration_data: str | None = None
    calibration_batches: int = 10
    calibration_batch_size: int = 1
    qdq_model: str | None = None
    timing_cache: str | None = None  # default for tensorrt: beside the engine
    int8_route: str = "auto"  # tensorrt: auto | qdq | cal_bin
    hardware_compatibility: str = "none"  # tensorrt: none | ampere+
    expected_gpu_product: str | None = None  # the pool's nvidia.com/gpu.product
    expected_compute_capability: str | None = None
    triton_repository: str | None = None  # also write the Triton entry there
    deepstream_config: str | None = None  # also write the nvinfer config there
    gates: tuple[tuple[str, float | None], ...] = ()
    #: None: publish the engine alone and leave the manifest to the caller
    #: (`bpnet-export --engine_file` adds it to the export's manifest).
    manifest_name: str | None = MANIFEST_NAME
    publish_rejected: bool = True
    #: The export's evaluation.json: turns the AP gate on. The set defaults to its own.
    eval_reference: str | None = None
    eval_annotations: str | None = None
    eval_images: str | None = None
    eval_max_images: int | None = None
    max_ap_drop: float | None = None  # AP points; None: the precision's default
    #: The SDK-compatible ONNX: also build its engine, from the same calibration.
    deploy_onnx: str | None = None


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


def _build_request(
    request: BuildStageRequest,
    onnx_path: Path,
    engine_path: Path,
    cal: Path | None,
    data: Path | None,
    qdq: Path | None,
    timing: Path | None,
) -> BuildRequest:
    """The backend's request for one engine: the stage's settings, these files."""
    return BuildRequest(
        onnx_path=onnx_path,
        engine_path=engine_path,
        precision=request.precision,
        max_batch_size=request.max_batch_size,
        max_workspace_size=request.max_workspace_size,
        strict_types=request.strict_types,
        calibration_cache=cal,
        calibration_data=data,
        calibration_batches=request.calibration_batches,
        calibration_batch_size=request.calibration_batch_size,
        qdq_model=qdq,
        timing_cache=timing,
        int8_route=request.int8_route,
        hardware_compatibility=request.hardware_compatibility,
    )


def _fetch_given(uri: str | None, work: Path, what: str) -> Path | None:
    """A local copy of `uri` when one is given (a missing one is the user's error)."""
    return input_files.fetch(uri, work, what) if uri else None


def _fetch_optional(uri: str | None, work: Path, what: str) -> Path | None:
    """A local copy of `uri`, or None when it is not given or does not exist yet."""
    if not uri:
        return None
    try:
        fetched = input_files.fetch(uri, work, what)
    except NotFoundError:
        log.info("no %s at %s yet", what, uri)
        return None
    return fetched


def _local_copy(fetched: Path | None, work: Path, name: str) -> Path:
    """A writable path in `work` for a file this build may update (cache, cal.bin)."""
    local = work / name
    if fetched is not None and fetched != local:
        shutil.copyfile(fetched, local)
    return local


def _put_back(local: Path, uri: str) -> None:
    if s3.is_s3(uri):
        s3.upload(local, s3.S3Uri.parse(uri))
    else:
        Path(uri).expanduser().parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, Path(uri).expanduser())


def _reference(request: BuildStageRequest, onnx_path: Path, work: Path) -> references.Reference:
    if request.reference_images:
        paths = references.image_paths(
            Path(request.reference_images).expanduser(), request.reference_image_count
        )
        height, width = references.input_hw(onnx_path)
        return references.from_images(onnx_path, paths, height, width)
    if not request.reference:
        raise UserError("verification needs --reference (reference.npz) or --reference_images")
    return references.from_npz(input_files.fetch(request.reference, work, "reference"))


def _target(request: BuildStageRequest, backend: str) -> tuple[dict[str, Any], str, Any]:
    """Before any download: the hardware checked, and the artifact's name for what it is.

    tensorrt: the GPU read from the device must be the one the pool
    advertises; the engine's name carries its compatibility record.
    onnxruntime: the artifact is an ONNX model, named `.onnx`.
    """
    check_level(request.hardware_compatibility, backend)
    expected = request.expected_gpu_product or request.expected_compute_capability
    if expected and backend != "tensorrt":
        raise UserError(
            "--expected_gpu_product/--expected_compute_capability: an onnxruntime build runs on "
            "the CPU; they apply to tensorrt builds only"
        )
    described = backend_by_name(backend).describe()
    record = None
    if backend == "tensorrt":
        check_expected_gpu(
            described, request.expected_gpu_product, request.expected_compute_capability
        )
        record = CompatibilityRecord.from_hardware(described, request.hardware_compatibility)
    location = artifact_file_name(request.engine_file, backend, record)
    if location != request.engine_file:
        log.info("the %s artifact is written as %s", backend, location)
    return described, location, record


def _check_request(request: BuildStageRequest) -> None:
    """What can be refused before any download or build."""
    if request.max_batch_size < 1:
        raise UserError(f"--max_batch_size must be at least 1, got {request.max_batch_size}")
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
    if given and not request.eval_reference:
        raise UserError(
            f"{', '.join(given)}: the AP gate needs --eval_reference (the export's "
            "evaluation.json, the FP32 model's AP to compare the engine's with)"
        )
    if request.eval_reference:
        max_ap_drop_for(request.precision, request.max_ap_drop)
    if request.deploy_onnx and request.precision == "int8" and not request.calibration_cache:
        raise UserError(
            "--deploy_onnx with --data_type int8 needs --cal_cache_file: the one calibration "
            "both engines are built from"
        )


def run_build(request: BuildStageRequest) -> BuildStageResult:
    _check_request(request)
    if request.deploy_onnx:
        # `--engine_file x.deploy.engine` names the deploy engine: the evaluated one is x.engine.
        plain = deploy_engine.plain_engine_file(request.engine_file)
        if plain != request.engine_file:
            log.info("the engine of --onnx is written as %s, the deploy one as %s",
                     plain, request.engine_file)  # fmt: skip
            request = dataclasses.replace(request, engine_file=plain)
    backend = backend_by_name(request.backend)
    _, engine_file, record = _target(request, backend.name)
    timing_uri = request.timing_cache
    if timing_uri is None and backend.name == "tensorrt":
        timing_uri = timing_cache_beside(request.engine_file)
    manifest = Manifest(command="build")
    engine_name = Path(engine_file.rpartition("/")[2]).name
    with (
        OutputSet(engine_file) as out,
        tempfile.TemporaryDirectory(prefix="bpnet-build-") as tmp,
    ):
        work = Path(tmp)
        with manifest.timed("fetch"):
            onnx_path = input_files.fetch(request.onnx, work, "ONNX model")
            cal_given = _fetch_optional(request.calibration_cache, work, "calibration cache")
            cal = _local_copy(cal_given, work, "cal.bin") if request.calibration_cache else None
            data = _fetch_given(request.calibration_data, work, "calibration tensorfile")
            qdq = _fetch_given(request.qdq_model, work, "QDQ model")
            timing = (
                _local_copy(_fetch_optional(timing_uri, work, "timing cache"), work, "timing.cache")
                if timing_uri
                else None
            )
            reference = _reference(request, onnx_path, work)
            given = _fetch_given(request.eval_reference, work, "evaluation reference")
            recorded = (
                accuracy.read_reference(given, request.eval_reference)
                if given is not None and request.eval_reference
                else None
            )
            deploy_onnx = _fetch_given(request.deploy_onnx, work, "deploy ONNX model")
        with manifest.timed("build"):
            built = backend.build(
                _build_request(request, onnx_path, out.staged(engine_name), cal, data, qdq, timing)
            )
        log.info(
            "built the %s %s engine in %.1f s",
            request.precision,
            backend.name,
            manifest.timings["build"],
        )
        with manifest.timed("verify"):
            runner = backend.load(built.path)
            try:
                verdict = verify(runner, reference, request.precision, dict(request.gates))
            finally:
                runner.close()
        log.info(
            "verification on %s: %s (%s)",
            reference.source,
            ", ".join(f"{k} {v:.4g}" for k, v in verdict.figures.items()),
            "passed" if verdict.passed else "FAILED",
        )
        manifest.inputs = {
            "onnx": request.onnx,
            "reference": request.reference_images or request.reference,
            "calibrationCache": request.calibration_cache,
            "calibrationData": request.calibration_data,
            "qdqModel": request.qdq_model,
        }
        manifest.details.update(
            {
                "backend": backend.name,
                "runtime": RUNTIMES[backend.name],
                "precision": request.precision,
                "maxBatchSize": request.max_batch_size,
                "hardware": built.hardware,
                "build": built.details,
                "verification": {**verdict.as_dict(), "reference": reference.source},
            }
        )
        if record is not None:
            manifest.details["compatibility"] = record.as_dict()
        elif built.compatibility is not None:
            manifest.details["compatibility"] = built.compatibility
        published: list[str] = []
        if not verdict.passed:
            _reject(request, out, manifest)
            try:
                enforce(verdict, backend.name)
            except VerificationError as exc:
                exc.manifest = manifest.to_dict()
                raise
        if recorded is not None:
            eval_request = recorded.request(
                request.eval_annotations,
                request.eval_images,
                request.eval_max_images,
                request.max_ap_drop,
            )
            with manifest.timed("evaluate"):
                block, ap_verdict = accuracy.gate_engine(
                    eval_request,
                    recorded,
                    backend.name,
                    built.path,
                    out.final_location(engine_name),
                    request.precision,
                    references.input_hw(onnx_path),
                )
            log.info("OKS AP: %s (%s)", ap_verdict.message,
                     "passed" if ap_verdict.passed else "FAILED")  # fmt: skip
            manifest.details["evaluation"] = block
            if not ap_verdict.passed:
                _reject(request, out, manifest)
                raise EngineApDropError(ap_verdict.message, manifest.to_dict())
        names = [engine_name]
        deploy_served = None
        if deploy_onnx is not None:
            deploy_file = artifact_file_name(
                deploy_engine.engine_file(request.engine_file), backend.name, record
            )
            deploy_name = Path(deploy_file.rpartition("/")[2]).name
            deploy_served = _build_deploy(
                _Deploy(request, backend, deploy_onnx, deploy_name, record),
                reference, cal, timing, work, out, manifest,
            )  # fmt: skip
            if "evaluation" in manifest.details:
                manifest.details["evaluation"]["deployEngine"] = out.final_location(deploy_name)
        manifest.add_artifact("engine", out.staged(engine_name), out.final_location(engine_name))
        manifest.artifacts[-1]["runtime"] = backend.name
        served = _served(request, built.path, out.final_location(engine_name), onnx_path, qdq,
                         built.details, record)  # fmt: skip
        for kind, name in serving.stage_beside(out, served):
            manifest.add_artifact(kind, out.staged(name), out.final_location(name))
            names.append(name)
        manifest.details["serving"] = _serving_entry(out, names)
        if deploy_served is not None:
            names += _publishable_deploy(out, manifest, deploy_served)
        # The extra copies first: they read the artifact from the staging directory.
        if request.triton_repository:
            serving.write_triton_repository(request.triton_repository, served)
        if request.deepstream_config:
            serving.write_deepstream_config(request.deepstream_config, served)
        if request.manifest_name:
            manifest.write(out.staged(request.manifest_name))
            names.append(request.manifest_name)
        published = out.publish(names)
        if timing is not None and timing_uri and timing.exists():
            _put_back(timing, timing_uri)
        if (
            cal is not None
            and request.calibration_cache
            and built.details.get("int8Source") == "tensorfile"
            and cal.exists()
        ):
            _put_back(cal, request.calibration_cache)
    return BuildStageResult(manifest=manifest.to_dict(), verdict=verdict, published=published)


def _reject(request: BuildStageRequest, out: OutputSet, manifest: Manifest) -> None:
    """A gate failed: the figures are kept as manifest.rejected.json, no engine goes out."""
    if request.publish_rejected:
        manifest.write(out.staged(REJECTED_MANIFEST_NAME))
        out.publish([REJECTED_MANIFEST_NAME])


@dataclass(frozen=True)
class _Deploy:
    """The SDK-compatible engine to build after the plain one (`stages.deploy`)."""

    request: BuildStageRequest
    backend: Any  # engines.base.EngineBackend
    onnx: Path  # local copy of --deploy_onnx
    name: str  # its artifact's name beside the plain engine
    record: CompatibilityRecord | None


def _build_deploy(
    deploy: _Deploy,
    reference: references.Reference,
    cal: Path | None,
    timing: Path | None,
    work: Path,
    out: OutputSet,
    manifest: Manifest,
) -> serving.Served:
    """Build and verify the deploy engine from the plain build's calibration; stage it."""
    request, backend = deploy.request, deploy.backend
    int8 = request.precision == "int8"
    qdq = None
    if int8:
        if cal is None or not cal.exists():
            raise UserError(
                f"--deploy_onnx: no cal.bin at {request.calibration_cache} after the plain "
                "build, so the deploy engine cannot share its calibration"
            )
        if request.qdq_model:
            qdq = deploy_engine.qdq_model(deploy.onnx, cal, work / "deploy.qdq.onnx")
    with manifest.timed("buildDeploy"):
        # cal.bin exists: never a second calibration (no tensorfile).
        cache = cal if int8 else None
        built = backend.build(
            _build_request(request, deploy.onnx, out.staged(deploy.name), cache, None, qdq, timing)
        )
    with manifest.timed("verifyDeploy"):
        deploy_reference = deploy_engine.reference(deploy.onnx, reference)
        runner = backend.load(built.path)
        try:
            verdict = verify(runner, deploy_reference, request.precision, dict(request.gates))
        finally:
            runner.close()
    location = out.final_location(deploy.name)
    manifest.details["deploy"] = {
        "path": location,
        "onnx": request.deploy_onnx,
        "calibration": request.calibration_cache if int8 else None,  # the plain engine's own
        "build": built.details,
        "verification": {**verdict.as_dict(), "reference": deploy_reference.source},
    }
    if not verdict.passed:
        _reject(request, out, manifest)
        try:
            enforce(verdict, backend.name)
        except VerificationError as exc:
            exc.args = (f"the SDK-compatible (deploy) engine: {exc}",)
            exc.manifest = manifest.to_dict()
            raise
    served = _served(request, built.path, location, deploy.onnx, qdq, built.details,
                     deploy.record)  # fmt: skip
    return dataclasses.replace(
        served, onnx_source=str(request.deploy_onnx), model_name=deploy_engine.TRITON_MODEL
    )


def _publishable_deploy(out: OutputSet, manifest: Manifest, served: serving.Served) -> list[str]:
    """List the deploy engine and its serving configs in the manifest; their names."""
    name = served.artifact_location.rpartition("/")[2]
    manifest.add_artifact(deploy_engine.KINDS["engine"], out.staged(name), out.final_location(name))
    manifest.artifacts[-1]["runtime"] = served.backend
    names = [name]
    for kind, staged in deploy_engine.stage_serving(out, served):
        manifest.add_artifact(kind, out.staged(staged), out.final_location(staged))
        names.append(staged)
    manifest.details["deploy"]["serving"] = {
        "tritonModel": deploy_engine.TRITON_MODEL,
        "tritonConfig": out.final_location(names[1]),
        "deepstreamConfig": out.final_location(deploy_engine.DEEPSTREAM_FILE),
    }
    return names


def _served(
    request: BuildStageRequest,
    artifact: Path,
    location: str,
    onnx_path: Path,
    qdq: Path | None,
    details: dict[str, Any],
    record: CompatibilityRecord | None,
) -> serving.Served:
    built_from_qdq = details.get("int8Source") == "qdq" and request.qdq_model is not None
    return serving.Served(
        backend=request.backend,
        precision=request.precision,
        max_batch_size=request.max_batch_size,
        bindings=onnx_bindings.read(qdq if built_from_qdq and qdq is not None else onnx_path),
        artifact=artifact,
        artifact_location=location,
        onnx_source=str(request.qdq_model) if built_from_qdq else request.onnx,
        cal_bin=request.calibration_cache if request.precision == "int8" else None,
        compute_capability=record.compute_capability if record is not None else None,
    )


def _serving_entry(out: OutputSet, names: list[str]) -> dict[str, Any]:
    """Where the serving configs are (the operator puts this in the target's status)."""
    config = next(n for n in names if n.endswith("config.pbtxt"))
    model_dir = config.rpartition("/")[0]
    return {
        "tritonRepository": out.final_location(serving.TRITON_DIR),
        "tritonModel": model_dir.rpartition("/")[2],
        "tritonConfig": out.final_location(config),
        "deepstreamConfig": out.final_location(DEEPSTREAM_FILE),
    }


# --- `bpnet-export --engine_file`: the build stage right after the export, in one run ---

#: Artifact kinds the export manifest may carry for int8 (written by the calibration stage).
CAL_CACHE_KINDS = ("calibration-cache", "cal-cache")
QDQ_KINDS = ("qdq-model", "qdq")


@dataclass(frozen=True)
class EnginePlan:
    """The engine `bpnet-export --engine_file` builds after the export (checked before it)."""

    engine_file: str
    backend: str
    precision: str
    max_batch_size: int
    max_workspace_size: int
    strict_types: bool
    timing_cache: str | None
    reference_images: str | None
    gates: tuple[tuple[str, float | None], ...]
    cal_cache_file: str | None
    int8_route: str = "auto"
    hardware_compatibility: str = "none"
    expected_gpu_product: str | None = None
    expected_compute_capability: str | None = None
    triton_repository: str | None = None
    deepstream_config: str | None = None


def _artifact(manifest: dict[str, Any], kinds: tuple[str, ...]) -> str | None:
    for artifact in manifest.get("artifacts", []):
        if artifact.get("kind") in kinds:
            return str(artifact["path"])
    return None


def _record(
    export_manifest: dict[str, Any],
    location: str,
    engine: dict[str, Any],
    artifacts: list[dict[str, Any]] | None,
) -> None:
    """Rewrite the export's manifest.json with the engine entry (the manifest stays last)."""
    updated = {**export_manifest, "engine": engine}
    if artifacts:
        updated["artifacts"] = [*export_manifest["artifacts"], *artifacts]
    with OutputSet(location) as out:
        out.staged(MANIFEST_NAME).write_text(json.dumps(updated, indent=2) + "\n")
        out.publish([MANIFEST_NAME])
    export_manifest.clear()
    export_manifest.update(updated)


def _engine_entry(
    plan: EnginePlan, build: dict[str, Any], artifact: dict[str, Any] | None
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "backend": plan.backend,
        "precision": plan.precision,
        "maxBatchSize": plan.max_batch_size,
        "hardware": build.get("hardware", {}),
        "build": build.get("build", {}),
        "verification": build.get("verification", {}),
        "timingsSeconds": build.get("timingsSeconds", {}),
        "runtime": build.get("runtime"),
        "compatibility": build.get("compatibility"),
        "serving": build.get("serving"),
        "evaluation": build.get("evaluation"),
        "deploy": build.get("deploy"),
    }
    if artifact is not None:
        entry["path"] = artifact["path"]
    else:
        entry["rejectedPath"] = plan.engine_file
    return entry


def build_after_export(
    plan: EnginePlan, export_manifest: dict[str, Any], manifest_uri: str
) -> dict[str, Any]:
    """Build and verify the planned engine from the export's artifacts; record it either way.

    The flow `tao model bpnet export --engine_file` runs: the export has
    published the .etlt, .onnx, reference.npz and manifest.json; the engine is
    built with the chosen backend, verified (and, when the export evaluated
    its model, AP-gated against its evaluation.json), published, and recorded
    in the export's manifest, passed or not; a failed gate then fails the run
    (`VerificationError` or `ApDropError`, exit code 3).
    """
    onnx = _artifact(export_manifest, ("onnx",))
    reference = _artifact(export_manifest, ("reference",))
    if onnx is None or reference is None:
        raise UserError("the export's manifest names no ONNX model or reference to build from")
    request = BuildStageRequest(
        onnx=onnx,
        engine_file=plan.engine_file,
        reference=reference,
        reference_images=plan.reference_images,
        precision=plan.precision,
        backend=plan.backend,
        max_batch_size=plan.max_batch_size,
        max_workspace_size=plan.max_workspace_size,
        strict_types=plan.strict_types,
        calibration_cache=_artifact(export_manifest, CAL_CACHE_KINDS) or plan.cal_cache_file,
        qdq_model=_artifact(export_manifest, QDQ_KINDS),
        timing_cache=plan.timing_cache,
        int8_route=plan.int8_route,
        hardware_compatibility=plan.hardware_compatibility,
        expected_gpu_product=plan.expected_gpu_product,
        expected_compute_capability=plan.expected_compute_capability,
        triton_repository=plan.triton_repository,
        deepstream_config=plan.deepstream_config,
        gates=plan.gates,
        manifest_name=None,
        publish_rejected=False,
        # The export's own evaluation.json and deploy graph, when it wrote them.
        eval_reference=_artifact(export_manifest, (accuracy.REFERENCE_KIND,)),
        deploy_onnx=_artifact(export_manifest, ("deploy-onnx",)),
    )
    try:
        result = run_build(request)
    except (VerificationError, EngineApDropError) as exc:
        build = exc.manifest or {}
        _record(export_manifest, manifest_uri, _engine_entry(plan, build, None), None)
        raise
    artifacts: list[dict[str, Any]] = result.manifest["artifacts"]
    artifact = artifacts[0]
    entry = _engine_entry(plan, result.manifest, artifact)
    _record(export_manifest, manifest_uri, entry, artifacts)
    return artifact
