"""`bpnet-export --engine_file`: the engine flags, and building the engine after the export.

Kept apart from `cli.py` so the export's flags and the engine's can change
without touching each other. The flow, as `tao model bpnet export
--engine_file` runs it: export (the .etlt, .onnx, reference.npz and
manifest.json are published), then build the engine with the chosen backend
(`stages.build`), verify it, publish it, and record it in the export's
manifest, passed or not; a failed gate then fails the run (exit code 3).

Engine-only flags (`--max_batch_size`, `--max_workspace_size`, `-s`,
`--engine_backend`, `--timing_cache`, the gates) without `--engine_file` are
refused rather than ignored. `--engine_file` naming a directory (trailing `/`
or an existing one) gets TAO's name, `bpnet_model.$H.$W.$precision.engine`
(`.deploy.engine` with `--sdk_compatible_model`).
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from typing import Any

from bodypose_exporter.build_cli import add_gate_flags, gate_overrides
from bodypose_exporter.engines.naming import resolve_engine_file
from bodypose_exporter.engines.registry import BACKENDS, DEFAULT_BACKEND, require_available
from bodypose_exporter.errors import UserError
from bodypose_exporter.manifest import MANIFEST_NAME
from bodypose_exporter.storage.outputs import OutputSet
from bodypose_exporter.verification.gates import VerificationError

log = logging.getLogger("bpnet-export")

DEFAULT_MAX_BATCH_SIZE = 1
DEFAULT_MAX_WORKSPACE_SIZE = 2 * (1 << 30)
#: Artifact kinds the export manifest may carry for int8 (written by the calibration wiring).
CAL_CACHE_KINDS = ("calibration-cache", "cal-cache")
QDQ_KINDS = ("qdq-model", "qdq")
_ENGINE_ONLY = {
    "--max_batch_size": "max_batch_size",
    "--max_workspace_size": "max_workspace_size",
    "-s/--strict_type_constraints": "strict_type_constraints",
    "--engine_backend": "engine_backend",
    "--timing_cache": "timing_cache",
    "--reference_images": "reference_images",
    "--max_abs_diff": "max_abs_diff",
    "--min_cosine": "min_cosine",
    "--min_peak_agreement": "min_peak_agreement",
}


def add_engine_flags(p: argparse.ArgumentParser) -> None:
    """Flags only `--engine_file` uses (besides TAO's, which cli.py declares)."""
    p.add_argument(
        "--engine_backend", default=None, choices=BACKENDS,
        help="what --engine_file is built with: tensorrt (GPU pools; default) or onnxruntime "
        "(CPU: an optimized ONNX model, int8 as QDQ)",
    )  # fmt: skip
    p.add_argument(
        "--timing_cache", default=None,
        help="TensorRT timing cache to reuse and update (default: <engine_file>.timing.cache)",
    )  # fmt: skip
    p.add_argument(
        "--reference_images", default=None,
        help="verify the engine on these images (a local directory) instead of the inputs "
        "in reference.npz",
    )  # fmt: skip
    add_gate_flags(p)


@dataclass(frozen=True)
class EnginePlan:
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


def plan_engine(args: argparse.Namespace, height: int, width: int) -> EnginePlan | None:
    """The engine to build after the export, or None; fails before any work on a bad request."""
    if args.engine_file is None:
        given = [flag for flag, attr in _ENGINE_ONLY.items() if getattr(args, attr) is not None]
        if given:
            raise UserError(
                f"{', '.join(given)}: only used when building an engine; add --engine_file"
            )
        return None
    backend = args.engine_backend or DEFAULT_BACKEND
    require_available(backend)
    max_batch = args.max_batch_size if args.max_batch_size is not None else DEFAULT_MAX_BATCH_SIZE
    if max_batch < 1:
        raise UserError(f"--max_batch_size must be at least 1, got {max_batch}")
    workspace = args.max_workspace_size
    if workspace is not None and workspace < 1:
        raise UserError(f"--max_workspace_size must be a positive number of bytes, got {workspace}")
    return EnginePlan(
        engine_file=resolve_engine_file(
            args.engine_file, height, width, args.data_type, args.sdk_compatible_model
        ),
        backend=backend,
        precision=args.data_type,
        max_batch_size=max_batch,
        max_workspace_size=workspace or DEFAULT_MAX_WORKSPACE_SIZE,
        strict_types=bool(args.strict_type_constraints),
        timing_cache=args.timing_cache,
        reference_images=args.reference_images,
        gates=gate_overrides(args),
        cal_cache_file=args.cal_cache_file,
    )


def _artifact(manifest: dict[str, Any], kinds: tuple[str, ...]) -> str | None:
    for artifact in manifest.get("artifacts", []):
        if artifact.get("kind") in kinds:
            return str(artifact["path"])
    return None


def _record(
    export_manifest: dict[str, Any],
    location: str,
    engine: dict[str, Any],
    artifact: dict[str, Any] | None,
) -> None:
    """Rewrite the export's manifest.json with the engine entry (the manifest stays last)."""
    updated = {**export_manifest, "engine": engine}
    if artifact is not None:
        updated["artifacts"] = [*export_manifest["artifacts"], artifact]
    with OutputSet(location) as out:
        out.staged(MANIFEST_NAME).write_text(json.dumps(updated, indent=2) + "\n")
        out.publish([MANIFEST_NAME])
    export_manifest.clear()
    export_manifest.update(updated)


def build_engine(
    plan: EnginePlan, export_manifest: dict[str, Any], manifest_uri: str
) -> dict[str, Any]:
    """Build and verify the planned engine from the export's artifacts; record it either way."""
    from bodypose_exporter.stages.build import BuildStageRequest, run_build

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
        gates=plan.gates,
        manifest_name=None,
        publish_rejected=False,
    )
    try:
        result = run_build(request)
    except VerificationError as exc:
        build = exc.manifest or {}
        _record(export_manifest, manifest_uri, _engine_entry(plan, build, None), None)
        raise
    artifact: dict[str, Any] = result.manifest["artifacts"][0]
    _record(export_manifest, manifest_uri, _engine_entry(plan, result.manifest, artifact), artifact)
    return artifact


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
    }
    if artifact is not None:
        entry["path"] = artifact["path"]
    else:
        entry["rejectedPath"] = plan.engine_file
    return entry


def verification_line(export_manifest: dict[str, Any]) -> str:
    verification = export_manifest.get("engine", {}).get("verification", {})
    figures = verification.get("figures", {})
    shown = ", ".join(f"{k} {v:.4g}" for k, v in figures.items())
    return f"verification {shown}  {'passed' if verification.get('passed') else 'FAILED'}"
