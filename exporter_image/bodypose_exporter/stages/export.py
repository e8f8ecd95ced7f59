"""The export stage: fetch, decrypt, convert, check, encrypt, publish.

`.tlt` -> Keras model -> deploy model at the requested size -> ONNX (tf2onnx)
-> fidelity check against Keras -> `.etlt` (encrypted ONNX) plus the plain
`.onnx` (TAO 5 and current DeepStream read ONNX directly) plus `manifest.json`;
for int8 also the calibration stage's outputs (`stages.calibrate`); with an
evaluation set, the FP32 model's OKS AP (`evaluation.json`, `stages.accuracy`).

With `--sdk_compatible_model` and an evaluation set both graphs are
published: the plain `<model>.onnx` (TAO's evaluation tools, and ours, read
only the stride-8 outputs; it is the one evaluated, calibrated and verified)
and the SDK-compatible `<model>.deploy.onnx` (the `.etlt` holds this one, as
TAO's `--sdk_compatible_model` export does). One calibration serves both: the
deploy graph is the plain graph, with the same tensor names, plus a
nearest-neighbour upsampling of the PAF after `paf_out/BiasAdd:0`, so cal.bin
covers every tensor the two share; the deploy graph's few others get exact
scales from the tensors they copy (`stages.deploy.cover_deploy_graph`). Importing
this module imports TensorFlow (through `model.keras_backend`, which keeps its
native start-up chatter off the terminal); commands that do not export import
it only when they run.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bodypose_exporter.calibration.preprocess import Normalization
from bodypose_exporter.codec import codec_by_name
from bodypose_exporter.codec.tao_files import check_hdf5_complete, read_tlt, write_etlt
from bodypose_exporter.convert.fidelity import (
    DEFAULT_TOLERANCE,
    REFERENCE_NAME,
    compare_with_keras,
    reference_inputs,
    write_reference,
)
from bodypose_exporter.convert.keras_to_onnx import keras_to_onnx
from bodypose_exporter.errors import CorruptModelError, UserError
from bodypose_exporter.evaluation.accuracy import EvaluationRequest, evaluate_artifact
from bodypose_exporter.evaluation.digest import set_digest
from bodypose_exporter.evaluation.sources import open_set
from bodypose_exporter.manifest import MANIFEST_NAME, Manifest, sha256_of
from bodypose_exporter.model.bpnet import stage_count
from bodypose_exporter.model.deploy import build_deploy_model
from bodypose_exporter.model.dims import InputDims
from bodypose_exporter.model.keras_backend import keras
from bodypose_exporter.stages import accuracy
from bodypose_exporter.stages import calibrate as calibration_step
from bodypose_exporter.stages import deploy as deploy_engine
from bodypose_exporter.stages.calibrate import CalibrationRequest
from bodypose_exporter.storage import inputs as input_files
from bodypose_exporter.storage.outputs import OutputSet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportRequest:
    model: str
    key: str
    output: str
    dims: InputDims
    sdk_compatible: bool = False
    upsample_ratio: int = 4
    codec: str = "auto"
    experiment_spec: str | None = None
    tolerance: float = DEFAULT_TOLERANCE
    data_type: str = "fp32"
    #: int8 only: the calibration flags (cal.bin, the QDQ model and ranges are published too).
    calibration: CalibrationRequest | None = None
    #: Evaluate the FP32 model on this set (`evaluation.json`, the manifest's `evaluation`).
    evaluation: EvaluationRequest | None = None


@dataclass(frozen=True)
class ExportResult:
    published: list[str]
    manifest: dict[str, Any]


def default_output(model: str) -> str:
    """`<input>.etlt`, as TAO's bpnet export defaulted (the .tlt suffix replaced)."""
    stem = model[: -len(".tlt")] if model.endswith(".tlt") else model
    return f"{stem}.etlt"


def onnx_name_for(etlt_name: str) -> str:
    stem = etlt_name[: -len(".etlt")] if etlt_name.endswith(".etlt") else etlt_name
    return f"{stem}.onnx"


def deploy_onnx_name_for(etlt_name: str) -> str:
    """`<model>.deploy.onnx`, TAO's name for the SDK-compatible graph."""
    return onnx_name_for(etlt_name)[: -len(".onnx")] + ".deploy.onnx"


def _tensors(info: Any) -> dict[str, Any]:
    return {
        "input": {"name": info.input_name, "shape": info.input_shape},
        "outputs": [
            {"name": n, "shape": s}
            for n, s in zip(info.output_names, info.output_shapes, strict=True)
        ],
    }


def _load_keras(h5_path: Path, source: str) -> Any:
    try:
        return keras.models.load_model(str(h5_path), compile=False)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CorruptModelError(
            f"{source} decrypts with this key but is not a loadable Keras model: {exc}"
        ) from exc


def _normalization(spec_path: Path | None) -> dict[str, Any]:
    """TAO's dataloader normalization (offset 0.5, scale 256 unless the spec says otherwise)."""
    offset, scale = [0.5, 0.5, 0.5], [256.0, 256.0, 256.0]
    if spec_path is not None:
        try:
            spec = yaml.safe_load(spec_path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise UserError(f"-e/--experiment_spec {spec_path} is not valid YAML: {exc}") from exc
        params = (spec.get("dataloader") or {}).get("normalization_params") or {}
        offset = list(params.get("image_offset", offset))
        scale = list(params.get("image_scale", scale))
    return {"imageOffset": offset, "imageScale": scale, "channelOrder": "RGB", "layout": "NHWC"}


def run_export(request: ExportRequest) -> ExportResult:
    """Run the export stage end to end; nothing is published unless all of it succeeds."""
    codecs = codec_by_name(request.codec)
    manifest = Manifest(command="export")
    etlt_name = Path(request.output.rpartition("/")[2]).name
    if not etlt_name.endswith(".etlt"):
        raise UserError(f"-o/--output_file {request.output!r} must name an .etlt file")
    onnx_name = onnx_name_for(etlt_name)
    # Both graphs only when one must be evaluated and the other deployed (module docstring).
    deploy_name = (
        deploy_onnx_name_for(etlt_name)
        if request.sdk_compatible and request.evaluation is not None
        else None
    )
    hw = (request.dims.height, request.dims.width)
    if request.data_type == "int8" and request.calibration is None:
        raise UserError("--data_type int8 needs the calibration flags (--cal_image_dir, ...)")
    cal_plan = None
    if request.calibration is not None:
        # Before the model is fetched: a wrong image prefix must not cost a conversion.
        cal_plan = calibration_step.preflight(request.calibration, hw)

    with (
        OutputSet(request.output) as out,
        tempfile.TemporaryDirectory(prefix="bpnet-export-") as tmp,
    ):
        work = Path(tmp)
        evaluation_set = evaluation_digest = None
        if request.evaluation is not None:
            # Before the model is fetched too: a bad set is refused before any conversion.
            with manifest.timed("evaluationSet"):
                (work / "evaluation").mkdir()  # S3 downloads land there
                evaluation_set = open_set(
                    request.evaluation.annotations,
                    request.evaluation.images,
                    work / "evaluation",
                    request.evaluation.max_images,
                )
                # Recorded in evaluation.json: builds compare their set's with it first.
                evaluation_digest = set_digest(evaluation_set)
        with manifest.timed("fetch"):
            model_path = input_files.fetch(request.model, work, "model")
            spec_path = (
                input_files.fetch(request.experiment_spec, work, "experiment spec")
                if request.experiment_spec
                else None
            )
        with manifest.timed("decrypt"):
            try:
                decrypted = read_tlt(model_path, request.key, codecs, work / "model.h5")
            except UserError as exc:
                # The model was fetched to a scratch file: name the user's own URI instead.
                raise type(exc)(str(exc).replace(str(model_path), request.model)) from exc
            # The URI as given: Path() would make s3://b/k read s3:/b/k.
            check_hdf5_complete(decrypted.path, request.model)
            trained = _load_keras(decrypted.path, request.model)
            log.info("decrypted %s with codec %s", request.model, decrypted.codec)
        with manifest.timed("convert"):
            try:
                stages = stage_count(trained)
            except ValueError as exc:
                raise CorruptModelError(
                    f"{request.model} is not a BodyPoseNet model: {exc}"
                ) from exc
            deploy = build_deploy_model(
                trained,
                request.dims.height,
                request.dims.width,
                sdk_compatible=request.sdk_compatible and deploy_name is None,
                upsample_ratio=request.upsample_ratio,
            )
            info = keras_to_onnx(deploy, out.staged(onnx_name))
            log.info("converted to ONNX: outputs %s", ", ".join(info.output_names))
            sdk_model = sdk_info = None
            if deploy_name is not None:
                sdk_model = build_deploy_model(
                    trained,
                    request.dims.height,
                    request.dims.width,
                    sdk_compatible=True,
                    upsample_ratio=request.upsample_ratio,
                )
                sdk_info = keras_to_onnx(sdk_model, out.staged(deploy_name))
                log.info("converted the SDK-compatible graph: outputs %s",
                         ", ".join(sdk_info.output_names))  # fmt: skip
        with manifest.timed("verify"):
            ref_inputs = reference_inputs(request.dims.height, request.dims.width)
            report = compare_with_keras(deploy, info.path, ref_inputs, request.tolerance)
            write_reference(out.staged(REFERENCE_NAME), ref_inputs, report.onnx_outputs)
            log.info(
                "ONNX Runtime vs Keras: max abs difference %.3g (tolerance %g)",
                report.worst,
                report.tolerance,
            )
            sdk_report = (
                compare_with_keras(sdk_model, sdk_info.path, ref_inputs, request.tolerance)
                if sdk_info is not None
                else None
            )
        evaluated = None
        if (
            request.evaluation is not None
            and evaluation_set is not None
            and evaluation_digest is not None
        ):
            # The plain FP32 graph, as TAO evaluates exported models (strict mode).
            with manifest.timed("evaluate"):
                evaluated = evaluate_artifact("onnxruntime", info.path, evaluation_set, *hw)
            accuracy.write_reference(
                out.staged(accuracy.REFERENCE_NAME),
                request.evaluation,
                evaluated,
                hw,
                out.final_location(onnx_name),
                evaluation_digest,
            )
            log.info(
                "FP32 OKS AP %.2f (AP50 %.2f) on %d images of %s",
                evaluated.ap * 100,
                evaluated.ap50 * 100,
                evaluated.images,
                request.evaluation.annotations,
            )
        with manifest.timed("encrypt"):
            # The .etlt is the graph the user deploys: the SDK-compatible one when asked for.
            etlt_source = sdk_info.path if sdk_info is not None else info.path
            write_etlt(etlt_source, out.staged(etlt_name), request.key, codecs[0])
        normalization = _normalization(spec_path)
        calibrated = None
        if request.calibration is not None and cal_plan is not None:
            with manifest.timed("calibrate"):
                calibrated = calibration_step.calibrate(
                    request.calibration,
                    cal_plan,
                    info.path,
                    hw,
                    Normalization.from_lists(
                        normalization["imageOffset"], normalization["imageScale"]
                    ),
                    work,
                    out.staging,
                )
                if sdk_info is not None:
                    # One cal.bin for both graphs (`stages.deploy.cover_deploy_graph`).
                    deploy_engine.cover_deploy_graph(
                        out.staged(calibration_step.CACHE_NAME), sdk_info.path
                    )

        manifest.inputs = {
            "model": request.model,
            "modelSha256": sha256_of(model_path),
            "experimentSpec": request.experiment_spec,
        }
        manifest.add_artifact("etlt", out.staged(etlt_name), out.final_location(etlt_name))
        manifest.add_artifact("onnx", out.staged(onnx_name), out.final_location(onnx_name))
        names = [etlt_name, onnx_name]
        if deploy_name is not None:
            manifest.add_artifact(
                "deploy-onnx", out.staged(deploy_name), out.final_location(deploy_name)
            )
            names.append(deploy_name)
        manifest.add_artifact(
            "reference", out.staged(REFERENCE_NAME), out.final_location(REFERENCE_NAME)
        )
        names.append(REFERENCE_NAME)
        if evaluated is not None:
            manifest.add_artifact(
                accuracy.REFERENCE_KIND,
                out.staged(accuracy.REFERENCE_NAME),
                out.final_location(accuracy.REFERENCE_NAME),
            )
            names.append(accuracy.REFERENCE_NAME)
        if calibrated is not None:
            for kind, name in calibrated.published_names:
                manifest.add_artifact(kind, out.staged(name), out.final_location(name))
                names.append(name)
        manifest.details = {
            "inputDims": request.dims.as_list(),
            "dataFormat": "channels_last",
            "dataType": request.data_type,
            "stages": stages,
            "sdkCompatible": request.sdk_compatible,
            "tensors": _tensors(info),
            "onnxOpset": info.opset,
            "codec": {"etlt": codecs[0].name, "tlt": decrypted.codec},
            "preprocessing": normalization,
            "fidelity": report.as_dict(),
        }
        if sdk_info is not None and sdk_report is not None:
            manifest.details["deploy"] = {
                "onnx": out.final_location(deploy_name or ""),
                "tensors": _tensors(sdk_info),
                "fidelity": sdk_report.as_dict(),
                "etlt": "deploy",  # which graph the .etlt holds
                # Measured on the plain graph, the deploy graph's own tensors added exactly.
                "calibration": "shared" if calibrated is not None else None,
            }
        if calibrated is not None:
            manifest.details["calibration"] = calibrated.details
        if evaluated is not None and request.evaluation is not None:
            manifest.details["evaluation"] = accuracy.export_block(request.evaluation, evaluated)
        manifest.write(out.staged(MANIFEST_NAME))
        published = out.publish([*names, MANIFEST_NAME])
    return ExportResult(published=published, manifest=manifest.to_dict())
