"""The build stage's request, and what is decided from it before any download: the checks,
the backend, the artifact's name and the timing cache the build reads and writes back.

The first step of `stages.build.run_build`: `prepare(request)` refuses what can be
refused at once and returns the `Target` every later step reads (nothing in it asks
which backend it holds: the backend's facts and its `target` decide).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bodypose_exporter.engines.base import CompatibilityRecord, EngineBackend, EngineOptions, flag
from bodypose_exporter.engines.capabilities import ChecksGpu, TimingCache
from bodypose_exporter.engines.compatibility import (
    check_foreign_options,
    check_level,
)
from bodypose_exporter.engines.naming import (
    artifact_file_name,
    shared_timing_cache,
    timing_cache_beside,
)
from bodypose_exporter.engines.registry import BACKEND_MODULES, backend_by_name
from bodypose_exporter.errors import UserError
from bodypose_exporter.evaluation.ap_gate import max_ap_drop_for
from bodypose_exporter.manifest import MANIFEST_NAME

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
    #: Default where the backend keeps one (`capabilities.TimingCache`): beside the engine.
    timing_cache: str | None = field(default=None, metadata=flag("--timing_cache"))
    #: Where the timing caches every build of a kind of hardware shares live (a directory
    #: or s3:// prefix): `<dir>/<TimingCache.shared_timing_cache_key>.cache`.
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
    #: Seconds each latency figure of the verified engine may take on this node
    #: (`verification.latency`); None: its default, BUDGET_SECONDS.
    latency_budget: float | None = None


@dataclass(frozen=True)
class Target:
    """What the request resolves to on this machine, before any download."""

    backend: EngineBackend
    #: Where the artifact is published (its suffix and compatibility tag the backend's).
    location: str
    record: CompatibilityRecord | None  # what the artifact needs of the machine loading it
    #: The timing cache read before the build and written back after it; None: none.
    timing_cache: str | None
    name: str  # the artifact's file name, beside its manifest (the last part of `location`)


def prepare(request: BuildStageRequest) -> Target:
    """Refuse what can be refused before any download or build; the request's `Target`."""
    check_request(request)
    backend = backend_by_name(request.engine.backend)
    location, record = _artifact(request, backend)
    name = Path(location.rpartition("/")[2]).name
    return Target(backend, location, record, _timing_cache_uri(request, backend), name)


def check_request(request: BuildStageRequest) -> None:
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


def _artifact(
    request: BuildStageRequest, backend: EngineBackend
) -> tuple[str, CompatibilityRecord | None]:
    """The options checked against the backend and this machine, and the artifact's name
    for what it is (its suffix, its compatibility record's tag)."""
    options = request.engine
    check_level(options.hardware_compatibility, backend.facts)
    check_foreign_options(options, backend.facts, (facts for facts, _ in BACKEND_MODULES.values()))
    described = backend.describe()
    if isinstance(backend, ChecksGpu):
        backend.check_gpu(described, options)
    record = backend.target(options, described)
    location = artifact_file_name(request.engine_file, backend.facts, record, options.precision)
    if location != request.engine_file:
        log.info("the %s artifact is written as %s", backend.facts.name, location)
    return location, record


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
    if not isinstance(backend, TimingCache):
        return None
    if inputs.timing_cache_dir:
        key = backend.shared_timing_cache_key(backend.describe())
        return shared_timing_cache(inputs.timing_cache_dir, key)
    return timing_cache_beside(request.engine_file)
