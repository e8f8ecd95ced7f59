"""The build's first edge: every input it reads, S3 or not, as local files, before any build.

`fetch_inputs(request, target, work)` downloads (or takes as they are: a local path,
or a copy an export run staged, `BuildInputs.local`) the ONNX model, the reference,
the int8 and fp16 inputs, the timing cache and the evaluation set, and checks the set
against the export's before any engine is built. After it, nothing but the publish
step (`stages.build_publish`) talks to S3.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from bodypose_exporter.errors import NotFoundError, UserError
from bodypose_exporter.stages import evaluation_step
from bodypose_exporter.stages.build_request import BuildInputs, BuildStageRequest, Target
from bodypose_exporter.storage.location import Location
from bodypose_exporter.verification import reference as references

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FetchedInputs:
    """The build's inputs as local files."""

    onnx: Path
    reference: references.Reference
    cal: Path | None  # a writable copy: TensorRT may write the cache it calibrates
    data: Path | None
    qdq: Path | None
    fp16: Path | None
    timing: Path | None  # a writable copy, merged and put back after the build
    #: The export's evaluation.json and the build's set, opened and checked against it
    #: before any build; None without --eval_reference.
    evaluation: evaluation_step.BuildEvaluation | None
    deploy_onnx: Path | None


def fetch_inputs(request: BuildStageRequest, target: Target, work: Path) -> FetchedInputs:
    inputs = request.inputs

    def given(uri: str | None, what: str) -> Path | None:
        return _fetch(inputs, uri, work, what) if uri else None

    onnx = _fetch(inputs, inputs.onnx, work, "ONNX model")
    cal = None
    if inputs.calibration_cache:
        found = _fetch_optional(inputs, inputs.calibration_cache, work, "calibration cache")
        cal = _writable(found, work, "cal.bin")
    timing = None
    if target.timing_cache:
        found = _fetch_optional(inputs, target.timing_cache, work, "timing cache")
        timing = _writable(found, work, "timing.cache")
    evaluation = given(inputs.eval_reference, "evaluation reference")
    opened = None
    if evaluation is not None and inputs.eval_reference:
        (work / "evaluation").mkdir()  # S3 downloads land there
        opened = evaluation_step.open_for_build(
            evaluation, inputs.eval_reference, request.eval_annotations, request.eval_images,
            request.eval_max_images, request.max_ap_drop, work / "evaluation",
        )  # fmt: skip
    return FetchedInputs(
        onnx=onnx,
        reference=_reference(inputs, onnx, work),
        cal=cal,
        data=given(inputs.calibration_data, "calibration tensorfile"),
        qdq=given(inputs.qdq_model, "QDQ model"),
        fp16=_fetch_optional(inputs, inputs.fp16_model, work, "FP16 model"),
        timing=timing,
        evaluation=opened,
        deploy_onnx=given(inputs.deploy_onnx, "deploy ONNX model"),
    )


def _fetch(inputs: BuildInputs, uri: str, work: Path, what: str) -> Path:
    """A local file for `uri`: the copy at hand, else the path itself or a download."""
    return inputs.local.get(uri) or Location(uri).fetch(work, what)


def _fetch_optional(inputs: BuildInputs, uri: str | None, work: Path, what: str) -> Path | None:
    """A local copy of `uri`, or None when it is not given or does not exist yet."""
    if not uri:
        return None
    try:
        return _fetch(inputs, uri, work, what)
    except NotFoundError:  # storage.errors.MissingError among them: not there yet
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
