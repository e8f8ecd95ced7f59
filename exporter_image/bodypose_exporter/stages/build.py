"""The build stage: shared artifacts in, one target's verified engine out.

Runs on the target pool's own hardware. Inputs come from the export stage
(the FP32 ONNX, `reference.npz`, and for int8 `cal.bin` or the QDQ model), by
path or s3:// URI; the engine and its `manifest.json` (hardware, timings,
verification figures) are published together, the manifest last.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bodypose_exporter.convert.fidelity import read_reference
from bodypose_exporter.engines import BuildRequest, backend_by_name
from bodypose_exporter.errors import NotFoundError
from bodypose_exporter.manifest import MANIFEST_NAME, Manifest
from bodypose_exporter.storage import inputs as input_files
from bodypose_exporter.storage import s3
from bodypose_exporter.storage.outputs import OutputSet
from bodypose_exporter.verification.compare import check, figures

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildStageRequest:
    onnx: str
    engine_file: str
    reference: str
    precision: str = "fp32"
    backend: str = "tensorrt"
    max_batch_size: int = 1
    max_workspace_size: int = 2 << 30
    strict_types: bool = False
    calibration_cache: str | None = None
    qdq_model: str | None = None
    timing_cache: str | None = None
    gates: tuple[tuple[str, float | None], ...] = ()


def _optional_fetch(uri: str | None, work: Path, what: str) -> Path | None:
    return input_files.fetch(uri, work, what) if uri else None


def _fetch_timing_cache(uri: str | None, work: Path) -> Path | None:
    if not uri:
        return None
    local = work / "timing.cache"
    try:
        fetched = input_files.fetch(uri, work, "timing cache")
    except NotFoundError:
        log.info("no timing cache at %s yet: this build starts one", uri)
        return local
    if fetched != local:
        local.write_bytes(fetched.read_bytes())
    return local


def run_build(request: BuildStageRequest) -> dict[str, Any]:
    backend = backend_by_name(request.backend)
    manifest = Manifest(command="build")
    engine_name = Path(request.engine_file.rpartition("/")[2]).name
    with (
        OutputSet(request.engine_file) as out,
        tempfile.TemporaryDirectory(prefix="bpnet-build-") as tmp,
    ):
        work = Path(tmp)
        with manifest.timed("fetch"):
            onnx_path = input_files.fetch(request.onnx, work, "ONNX model")
            reference = input_files.fetch(request.reference, work, "reference")
            cal = _optional_fetch(request.calibration_cache, work, "calibration cache")
            qdq = _optional_fetch(request.qdq_model, work, "QDQ model")
            timing = _fetch_timing_cache(request.timing_cache, work)
        started = time.perf_counter()
        with manifest.timed("build"):
            built = backend.build(
                BuildRequest(
                    onnx_path=onnx_path,
                    engine_path=out.staged(engine_name),
                    precision=request.precision,
                    max_batch_size=request.max_batch_size,
                    max_workspace_size=request.max_workspace_size,
                    strict_types=request.strict_types,
                    calibration_cache=cal,
                    qdq_model=qdq,
                    timing_cache=timing,
                )
            )
        log.info("built %s engine in %.1fs", backend.name, time.perf_counter() - started)
        with manifest.timed("verify"):
            inputs, expected = read_reference(reference)
            runner = backend.load(built.path)
            got: dict[str, Any] = {}
            for i in range(0, len(inputs), request.max_batch_size):
                part = runner.run(inputs[i : i + request.max_batch_size])
                for name, value in part.items():
                    got.setdefault(name, []).append(value)
            import numpy as np

            merged = {name: np.concatenate(values) for name, values in got.items()}
            measured = figures(expected, merged)
            manifest.details["verification"] = {"figures": measured}
            verdict = check(request.precision, measured, dict(request.gates))
            log.info("verification: %s", ", ".join(f"{k} {v:.4g}" for k, v in measured.items()))
        manifest.inputs = {"onnx": request.onnx, "reference": request.reference}
        manifest.add_artifact("engine", out.staged(engine_name), out.final_location(engine_name))
        manifest.details.update(
            {
                "backend": backend.name,
                "precision": request.precision,
                "maxBatchSize": request.max_batch_size,
                "hardware": built.hardware,
                "verification": verdict.as_dict(),
            }
        )
        manifest.write(out.staged(MANIFEST_NAME))
        out.publish([engine_name, MANIFEST_NAME])
        if timing is not None and request.timing_cache and timing.exists():
            if s3.is_s3(request.timing_cache):
                s3.upload(timing, s3.S3Uri.parse(request.timing_cache))
            else:
                Path(request.timing_cache).write_bytes(timing.read_bytes())
    return manifest.to_dict()
