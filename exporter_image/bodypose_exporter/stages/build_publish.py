"""The build's last edge: publish the verified engine with everything beside it, or reject it.

- `record_build`: what was asked, what was built and how it agreed, into the
  manifest (before the verdict is acted on, so a rejection keeps the figures);
- `reject` / `reject_accuracy`: a gate failed. No engine goes out; the
  manifest goes out as `manifest.rejected.json` (unless the caller keeps it,
  `publish_rejected=False`), and the run fails with `VerificationError` /
  `EngineApDropError` (exit 3), each carrying the manifest;
- `publish`: the engine, its companions and serving configs (and the deploy
  engine's), the extra copies `--triton_repository` / `--deepstream_config` ask
  for, the manifest last; then the files the build updated (`Updated`: the
  timing cache, a cal.bin the backend calibrated) go back where they came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bodypose_contract.manifest import Key
from bodypose_exporter.engines.base import BackendFacts
from bodypose_exporter.evaluation.ap_gate import ApDropError
from bodypose_exporter.manifest import REJECTED_MANIFEST_NAME, Kind, Manifest, file_name
from bodypose_exporter.stages import deploy as deploy_engine
from bodypose_exporter.stages import serving_configs
from bodypose_exporter.stages.build_engine import VerifiedEngine
from bodypose_exporter.stages.build_request import BuildStageRequest, Target
from bodypose_exporter.storage.location import Location
from bodypose_exporter.storage.outputs import OutputSet
from bodypose_exporter.verification.agreement_gates import Verdict, VerificationError, enforce


class EngineApDropError(ApDropError):
    """`ApDropError` of a build: carries the rejected build's manifest, as VerificationError."""

    def __init__(self, message: str, manifest: dict[str, Any]) -> None:
        super().__init__(message)
        self.manifest: dict[str, Any] | None = manifest


def precision_fields(facts: BackendFacts, asked: str) -> dict[str, str]:
    """`precision`: what the artifact computes in; where the backend builds what was asked
    as another (`BackendFacts.built_as`), `requestedPrecision` and `precisionReason` too."""
    built, why = facts.built_precision(asked)
    if why is None:
        return {"precision": asked}
    return {"precision": built, "requestedPrecision": asked, "precisionReason": why}


def record_build(
    manifest: Manifest, request: BuildStageRequest, target: Target, engine: VerifiedEngine
) -> None:
    """What was asked, what was built and how it agreed: the manifest's details."""
    manifest.timings.update(engine.timings)
    if engine.latency is not None:
        manifest.details["latency"] = engine.latency
    if engine.speedup is not None:
        manifest.details[Key.INT8_SPEEDUP] = engine.speedup
    if engine.warnings:
        manifest.details[Key.WARNINGS] = list(engine.warnings)
    inputs = request.inputs
    manifest.inputs = {
        "onnx": inputs.onnx,
        "reference": inputs.reference_images or inputs.reference,
        "calibrationCache": inputs.calibration_cache,
        "calibrationData": inputs.calibration_data,
        "qdqModel": inputs.qdq_model,
        "fp16Model": inputs.fp16_model,
    }
    facts, options = target.backend.facts, request.engine
    manifest.details.update(
        {
            "backend": facts.name,
            "runtime": facts.runtime,
            **precision_fields(facts, options.precision),
            "maxBatchSize": options.max_batch_size,
            "hardware": engine.built.hardware,
            "build": engine.built.details,
            "verification": {**engine.verdict.as_dict(), "reference": engine.reference},
        }
    )
    if target.record is not None:
        manifest.details["compatibility"] = target.record.as_dict()
    if request.target_identity is not None:
        manifest.details["targetIdentity"] = request.target_identity


def reject(
    out: OutputSet,
    manifest: Manifest,
    request: BuildStageRequest,
    target: Target,
    verdict: Verdict,
    prefix: str = "",
) -> None:
    """A verification gate failed: the figures are kept as manifest.rejected.json, no
    engine goes out, and `VerificationError` (prefixed with `prefix`) names the gates."""
    _publish_rejected(out, manifest, request)
    try:
        enforce(verdict, target.backend.facts.name)
    except VerificationError as exc:
        if prefix:
            exc.args = (f"{prefix}{exc}",)
        exc.manifest = manifest.to_dict()
        raise


def reject_accuracy(
    out: OutputSet, manifest: Manifest, request: BuildStageRequest, message: str
) -> None:
    """The AP gate failed: rejected as a failed verification is, `EngineApDropError`."""
    _publish_rejected(out, manifest, request)
    raise EngineApDropError(message, manifest.to_dict())


def _publish_rejected(out: OutputSet, manifest: Manifest, request: BuildStageRequest) -> None:
    if request.publish_rejected:
        manifest.write(out.staged(REJECTED_MANIFEST_NAME))
        out.publish([REJECTED_MANIFEST_NAME])


@dataclass(frozen=True)
class Publication:
    """What a build that passed publishes."""

    request: BuildStageRequest
    name: str  # the engine's file name, in the output set
    engine: VerifiedEngine
    served: serving_configs.Served  # the engine's serving configs say this
    deploy: serving_configs.Served | None  # the SDK-compatible engine's, when built
    #: The files the builds updated and where they go back (local, path or s3:// URI).
    put_back: tuple[tuple[Path, str], ...] = ()


def publish(out: OutputSet, manifest: Manifest, publication: Publication) -> list[str]:
    """Everything a passed build writes (module docstring); the published locations."""
    names = [publication.name, *_stage_engine(out, manifest, publication)]
    if publication.deploy is not None:
        names += _stage_deploy(out, manifest, publication.deploy)
    request = publication.request
    # The extra copies before the publish: they read the artifact from the staging directory.
    if request.triton_repository:
        serving_configs.write_triton_repository(request.triton_repository, publication.served)
    if request.deepstream_config:
        serving_configs.write_deepstream_config(request.deepstream_config, publication.served)
    if request.manifest_name:
        manifest.write(out.staged(request.manifest_name))
        names.append(request.manifest_name)
    published = out.publish(names)
    for local, location in publication.put_back:
        Location(location).put(local)
    return published


def _stage_engine(out: OutputSet, manifest: Manifest, publication: Publication) -> list[str]:
    """List the engine and its companions, stage its serving configs beside it; the names
    staged besides the engine's."""
    name, engine = publication.name, publication.engine
    manifest.add_artifact(Kind.ENGINE, out.staged(name), out.final_location(name))
    manifest.artifacts[-1]["runtime"] = publication.served.facts.name
    names = []
    for kind, path in engine.built.companions:  # what the backend wrote beside the artifact
        staged = path.relative_to(out.staging).as_posix()
        manifest.add_artifact(Kind(kind), path, out.final_location(staged))
        names.append(staged)
    for kind, staged in serving_configs.stage_beside(out, publication.served):
        manifest.add_artifact(kind, out.staged(staged), out.final_location(staged))
        names.append(staged)
    manifest.details["serving"] = _serving_entry(out, [name, *names])
    return names


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


def _stage_deploy(out: OutputSet, manifest: Manifest, served: serving_configs.Served) -> list[str]:
    """List the deploy engine and stage its serving configs; their names."""
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
