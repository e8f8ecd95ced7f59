"""The export stage: fetch, decrypt, convert, check, encrypt, publish.

`.tlt` -> Keras model -> deploy model at the requested size -> ONNX (tf2onnx)
-> fidelity check against Keras -> `.etlt` (encrypted ONNX) plus the plain
`.onnx` (TAO 5 and current DeepStream read ONNX directly) plus `manifest.json`;
for int8 also the calibration stage's outputs (`stages.calibrate`); with an
evaluation set, the FP32 model's OKS AP (`evaluation.json`, `stages.evaluation_step`).

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

import numpy as np
import yaml

from bodypose_exporter.calibration.preprocess import Normalization
from bodypose_exporter.codec import codec_by_name
from bodypose_exporter.codec.tao_files import check_hdf5_complete, read_tlt, write_etlt
from bodypose_exporter.convert.fidelity import (
    DEFAULT_TOLERANCE,
    FidelityReport,
    compare_with_keras,
    reference_inputs,
    write_verification_reference,
)
from bodypose_exporter.convert.fp16 import Fp16Model, write_fp16_model
from bodypose_exporter.convert.keras_to_onnx import OnnxExportInfo, keras_to_onnx
from bodypose_exporter.engines.base import run_batched
from bodypose_exporter.engines.registry import ONNX_REFERENCE, backend_by_name
from bodypose_exporter.errors import CorruptModelError, UserError
from bodypose_exporter.evaluation.artifact_ap import EvaluationRequest, evaluate_artifact
from bodypose_exporter.evaluation.digest import set_digest
from bodypose_exporter.evaluation.sources import open_set
from bodypose_exporter.manifest import (
    MANIFEST_NAME,
    Kind,
    Manifest,
    file_name,
    model_stem,
    sha256_of,
)
from bodypose_exporter.model.bpnet import stage_count
from bodypose_exporter.model.deploy import build_deploy_model
from bodypose_exporter.model.dims import InputDims
from bodypose_exporter.model.keras_backend import keras
from bodypose_exporter.stages import calibrate as calibration_step
from bodypose_exporter.stages import deploy as deploy_engine
from bodypose_exporter.stages import evaluation_step
from bodypose_exporter.stages.build import BuildStageRequest, build_from_export
from bodypose_exporter.stages.calibrate import CalibrationRequest
from bodypose_exporter.storage.location import Location
from bodypose_exporter.storage.outputs import OutputSet
from bodypose_exporter.verification import reference as references
from bodypose_exporter.verification.agreement_gates import VerificationError
from bodypose_exporter.verification.verify import verify

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
    manifest_uri: str  # where its manifest.json went


def default_output(model: str) -> str:
    """`<input>.etlt`, as TAO's bpnet export defaulted (the .tlt suffix replaced)."""
    stem = model[: -len(".tlt")] if model.endswith(".tlt") else model
    return f"{stem}.etlt"


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


@dataclass
class _Graph:
    """One ONNX graph the export writes: the plain one, and the SDK-compatible one beside it
    when one must be evaluated and the other deployed (module docstring)."""

    kind: Kind  # ONNX or DEPLOY_ONNX
    name: str  # its file name
    sdk_compatible: bool
    model: Any = None  # the Keras model at the requested size
    info: OnnxExportInfo | None = None
    report: FidelityReport | None = None


@dataclass
class _Export:
    """One run of the stage: the request, its staging and scratch, the manifest it fills."""

    request: ExportRequest
    out: OutputSet
    work: Path
    manifest: Manifest
    codecs: list[Any]
    stages: int = 0  # the trained model's, checked once it is decrypted
    evaluation_digest: Any = None  # the evaluation set's (`evaluation.digest`), when given
    #: What reference.npz's inputs are (`_reference_on_images`).
    reference: str = "random inputs in the network's input range"
    #: The FP16 model's verdict against FP32 (`_fp16_model`), for the manifest.
    fp16_verification: dict[str, Any] | None = None


def _graphs(request: ExportRequest, etlt_name: str) -> list[_Graph]:
    stem = model_stem(etlt_name)
    plain = _Graph(Kind.ONNX, file_name(Kind.ONNX, stem), request.sdk_compatible)
    if not (request.sdk_compatible and request.evaluation is not None):
        return [plain]
    plain.sdk_compatible = False  # the evaluated one; the deploy graph goes beside it
    return [plain, _Graph(Kind.DEPLOY_ONNX, file_name(Kind.DEPLOY_ONNX, stem), True)]


def _preflight(request: ExportRequest) -> tuple[str, Any]:
    """What can be refused before the model is fetched: the .etlt name, the int8 plan."""
    etlt_name = Path(request.output.rpartition("/")[2]).name
    if not etlt_name.endswith(".etlt"):
        raise UserError(f"-o/--output_file {request.output!r} must name an .etlt file")
    if request.data_type == "int8" and request.calibration is None:
        raise UserError("--data_type int8 needs the calibration flags (--cal_image_dir, ...)")
    cal_plan = None
    if request.calibration is not None:
        # A wrong image prefix must not cost a conversion.
        cal_plan = calibration_step.preflight(request.calibration, request.dims.height_width)
    return etlt_name, cal_plan


def run_export(request: ExportRequest, engine: BuildStageRequest | None = None) -> ExportResult:
    """Run the export stage end to end; nothing is published unless all of it succeeds.

    With `engine`, the engine is built from the files as staged here, before
    they are published, and recorded in the one manifest this run writes
    (`stages.build.build_from_export`); a failed gate publishes the export
    with the rejected engine's entry, then fails the run.
    """
    etlt_name, cal_plan = _preflight(request)
    graphs = _graphs(request, etlt_name)
    with (
        OutputSet(request.output) as out,
        tempfile.TemporaryDirectory(prefix="bpnet-export-") as tmp,
    ):
        run = _Export(request, out, Path(tmp), Manifest(command="export"),
                      codec_by_name(request.codec))  # fmt: skip
        evaluation_set = _open_evaluation_set(run)
        trained, decrypted, spec_path = _decrypt(run)
        for graph in graphs:
            _convert(run, trained, graph)
        _verify(run, graphs)
        _reference_on_evaluation_images(run, graphs[0], evaluation_set)
        fp16 = _fp16_model(run, graphs[0], engine.gates if engine is not None else ())
        evaluated = _evaluate(run, graphs[0], evaluation_set)
        with run.manifest.timed("encrypt"):
            # The .etlt is the graph the user deploys: the SDK-compatible one when asked for.
            assert graphs[-1].info is not None
            write_etlt(graphs[-1].info.path, out.staged(etlt_name), request.key, run.codecs[0])
        normalization = _normalization(spec_path)
        calibrated = _calibrate(run, graphs, cal_plan, normalization)
        _reference_on_images(run, graphs[0], calibrated)
        names = _list_artifacts(run, etlt_name, graphs, evaluated, calibrated, fp16)
        _describe(run, graphs, decrypted.codec, normalization, calibrated, evaluated, fp16)
        failure = None
        if engine is not None:
            local = {out.final_location(n): out.staged(n) for n in names}
            outcome = build_from_export(engine, run.manifest.to_dict(), local)
            run.manifest.details["engine"] = outcome.entry
            run.manifest.artifacts += outcome.artifacts
            failure = outcome.failure
        run.manifest.write(out.staged(MANIFEST_NAME))
        published = out.publish([*names, MANIFEST_NAME])
    if failure is not None:
        raise failure
    return ExportResult(published, run.manifest.to_dict(), out.final_location(MANIFEST_NAME))


def _open_evaluation_set(run: _Export) -> Any:
    """The evaluation set, opened before the model is fetched: a bad set costs no conversion."""
    evaluation = run.request.evaluation
    if evaluation is None:
        return None
    with run.manifest.timed("evaluationSet"):
        (run.work / "evaluation").mkdir()  # S3 downloads land there
        opened = open_set(
            evaluation.annotations, evaluation.images, run.work / "evaluation",
            evaluation.max_images,
        )  # fmt: skip
        # Recorded in evaluation.json: builds compare their set's with it first.
        run.evaluation_digest = set_digest(opened)
        return opened


def _decrypt(run: _Export) -> tuple[Any, Any, Path | None]:
    """The .tlt fetched and decrypted into a Keras model; (model, decrypted, spec path)."""
    request, work = run.request, run.work
    with run.manifest.timed("fetch"):
        model_path = Location(request.model).fetch(work, "model")
        spec_path = (
            Location(request.experiment_spec).fetch(work, "experiment spec")
            if request.experiment_spec
            else None
        )
    with run.manifest.timed("decrypt"):
        try:
            decrypted = read_tlt(model_path, request.key, run.codecs, work / "model.h5")
        except UserError as exc:
            # The model was fetched to a scratch file: name the user's own URI instead.
            raise type(exc)(str(exc).replace(str(model_path), request.model)) from exc
        # The URI as given: Path() would make s3://b/k read s3:/b/k.
        check_hdf5_complete(decrypted.path, request.model)
        trained = _load_keras(decrypted.path, request.model)
        log.info("decrypted %s with codec %s", request.model, decrypted.codec)
    try:
        run.stages = stage_count(trained)
    except ValueError as exc:
        raise CorruptModelError(f"{request.model} is not a BodyPoseNet model: {exc}") from exc
    run.manifest.inputs = {
        "model": request.model,
        "modelSha256": sha256_of(model_path),
        "experimentSpec": request.experiment_spec,
    }
    return trained, decrypted, spec_path


def _convert(run: _Export, trained: Any, graph: _Graph) -> None:
    request = run.request
    with run.manifest.timed("convert"):
        graph.model = build_deploy_model(
            trained, request.dims.height, request.dims.width,
            sdk_compatible=graph.sdk_compatible, upsample_ratio=request.upsample_ratio,
        )  # fmt: skip
        graph.info = keras_to_onnx(graph.model, run.out.staged(graph.name))
    which = "the SDK-compatible graph" if graph.kind == Kind.DEPLOY_ONNX else "ONNX"
    log.info("converted %s: outputs %s", which, ", ".join(graph.info.output_names))


def _verify(run: _Export, graphs: list[_Graph]) -> None:
    """Each graph's ONNX Runtime outputs against Keras; the plain one's are the reference."""
    request = run.request
    with run.manifest.timed("verify"):
        inputs = reference_inputs(request.dims.height, request.dims.width)
        for graph in graphs:
            assert graph.info is not None
            graph.report = compare_with_keras(graph.model, graph.info.path, inputs,
                                              request.tolerance)  # fmt: skip
        plain = graphs[0].report
        assert plain is not None
        write_verification_reference(
            run.out.staged(file_name(Kind.REFERENCE)), inputs, plain.onnx_outputs
        )
        log.info("ONNX Runtime vs Keras: max abs difference %.3g (tolerance %g)",
                 plain.worst, plain.tolerance)  # fmt: skip


def _fp16_model(
    run: _Export, plain: _Graph, overrides: tuple[tuple[str, float | None], ...]
) -> Fp16Model | None:
    """fp16: the FP16 mixed-precision model strongly typed TensorRT builds take
    (`convert.fp16`), checked against FP32 on reference.npz as an fp16 engine is (the same
    figures and gates, `verification`); one that fails them fails the export with them."""
    if run.request.data_type != "fp16":
        return None
    assert plain.info is not None
    name = file_name(Kind.FP16_ONNX, model_stem(plain.name))
    reference = references.from_npz(run.out.staged(file_name(Kind.REFERENCE)))
    with run.manifest.timed("fp16"):
        model = write_fp16_model(plain.info.path, run.out.staged(name), reference.inputs)
        runner = backend_by_name(ONNX_REFERENCE).load(model.path)
        try:
            verdict = verify(runner, reference, "fp16", dict(overrides))
        finally:
            runner.close()
    run.fp16_verification = {**verdict.as_dict(), "reference": run.reference}
    shown = ", ".join(f"{k} {v:.4g}" for k, v in verdict.figures.items())
    if not verdict.passed:
        raise VerificationError(
            f"the FP16 model {name} disagrees with the FP32 model on {run.reference}: "
            f"{'; '.join(verdict.failures)} (figures: {shown}). Nothing was published; a "
            "node the conversion should keep in FP32 (convert/fp16.py's rules), or a model "
            "whose weights or activations FP16 cannot hold, does this; export fp32",
            verdict,
        )
    log.info("the FP16 model against FP32 on %s: %s (passed)", run.reference, shown)
    return model


def _evaluate(run: _Export, plain: _Graph, evaluation_set: Any) -> Any:
    """The FP32 model's OKS AP, as TAO evaluates exported models (strict mode)."""
    evaluation = run.request.evaluation
    if evaluation is None or evaluation_set is None or run.evaluation_digest is None:
        return None
    assert plain.info is not None
    size = run.request.dims.height_width
    with run.manifest.timed("evaluate"):
        evaluated = evaluate_artifact(ONNX_REFERENCE, plain.info.path, evaluation_set, *size)
    evaluation_step.write_reference(
        run.out.staged(file_name(Kind.EVALUATION)), evaluation, evaluated, size,
        run.out.final_location(plain.name), run.evaluation_digest,
    )  # fmt: skip
    log.info("FP32 OKS AP %.2f (AP50 %.2f) on %d images of %s", evaluated.ap * 100,
             evaluated.ap50 * 100, evaluated.images, evaluation.annotations)  # fmt: skip
    return evaluated


def _calibrate(
    run: _Export, graphs: list[_Graph], cal_plan: Any, normalization: dict[str, Any]
) -> Any:
    """int8: one calibration on the plain graph, covering the deploy graph too."""
    calibration = run.request.calibration
    if calibration is None or cal_plan is None:
        return None
    plain, deploy = graphs[0], graphs[1] if len(graphs) > 1 else None
    assert plain.info is not None
    with run.manifest.timed("calibrate"):
        calibrated = calibration_step.calibrate(
            calibration, cal_plan, plain.info.path, run.request.dims.height_width,
            Normalization.from_lists(normalization["imageOffset"], normalization["imageScale"]),
            run.work, run.out.staging,
        )  # fmt: skip
        if deploy is not None and deploy.info is not None:
            # One cal.bin for both graphs (`stages.deploy.cover_deploy_graph`).
            deploy_engine.cover_deploy_graph(
                run.out.staged(file_name(Kind.CALIBRATION_CACHE)), deploy.info.path
            )
    return calibrated


#: At most this many held-back images go into an int8 export's reference.npz.
REFERENCE_IMAGES = 8


def _reference_on_evaluation_images(run: _Export, plain: _Graph, evaluation_set: Any) -> None:
    """fp16 with an evaluation set: reference.npz becomes its first images and the FP32
    model's outputs on them, so the FP16 model's check and every fp16 build's verification
    run on real images (as int8's on held-back calibration images, `_reference_on_images`).

    On the two noise inputs the heatmaps' keypoint candidates are the noise's own, not
    people's; the preprocessing is TAO's for engines (`verification.reference`).
    """
    if run.request.data_type != "fp16" or evaluation_set is None:
        return
    assert plain.info is not None
    images = evaluation_set.dataset["images"][:REFERENCE_IMAGES]
    paths = [evaluation_set.images_dir / image["file_name"] for image in images]
    if not paths:
        return
    height, width = run.request.dims.height_width
    reference = references.from_images(plain.info.path, paths, height, width)
    write_verification_reference(
        run.out.staged(file_name(Kind.REFERENCE)), reference.inputs, reference.outputs
    )
    run.reference = f"{len(paths)} evaluation images ({evaluation_set.images_source})"
    log.info("reference.npz: %s (fp16 models and engines are verified on real images)",
             run.reference)  # fmt: skip


def _reference_on_images(run: _Export, plain: _Graph, calibrated: Any) -> None:
    """int8: verify engines on real images, not noise: reference.npz becomes the held-back
    calibration images (the agreement's) and the FP32 model's outputs on them.

    An int8 engine's ranges come from real images; noise inputs drive the
    activations outside them, so what they measure is mostly clipping
    (`verification.reference` says the same of --reference_images). Measured
    on the trained sample at 320x448, its uint8 artifact against FP32: on the
    two noise inputs heatmap-peak agreement 0.66, on 8 held-back drawings 0.99.
    The Keras-vs-ONNX fidelity check keeps its noise inputs: it has no ranges.
    """
    if calibrated is None or not calibrated.held_back:
        return
    assert plain.info is not None
    inputs = np.stack(calibrated.held_back[:REFERENCE_IMAGES]).astype(np.float32)
    runner = backend_by_name(ONNX_REFERENCE).load(plain.info.path)
    try:
        outputs = run_batched(runner, inputs)
    finally:
        runner.close()
    write_verification_reference(run.out.staged(file_name(Kind.REFERENCE)), inputs, outputs)
    run.reference = f"{len(inputs)} held-back calibration images"
    log.info("reference.npz: %d held-back calibration images (int8 engines are verified on "
             "real images)", len(inputs))  # fmt: skip


def _list_artifacts(
    run: _Export,
    etlt_name: str,
    graphs: list[_Graph],
    evaluated: Any,
    calibrated: Any,
    fp16: Fp16Model | None,
) -> list[str]:
    """Every staged file in the manifest, in publishing order; their names."""
    listed: list[tuple[Kind, str]] = [(Kind.ETLT, etlt_name)]
    listed += [(graph.kind, graph.name) for graph in graphs]
    listed.append((Kind.REFERENCE, file_name(Kind.REFERENCE)))
    if evaluated is not None:
        listed.append((Kind.EVALUATION, file_name(Kind.EVALUATION)))
    if calibrated is not None:
        listed += calibrated.published_names
    if fp16 is not None:
        listed.append((Kind.FP16_ONNX, fp16.path.name))
    for kind, name in listed:
        run.manifest.add_artifact(kind, run.out.staged(name), run.out.final_location(name))
    return [name for _, name in listed]


def _describe(
    run: _Export,
    graphs: list[_Graph],
    tlt_codec: str,
    normalization: dict[str, Any],
    calibrated: Any,
    evaluated: Any,
    fp16: Fp16Model | None,
) -> None:
    request, plain = run.request, graphs[0]
    assert plain.info is not None and plain.report is not None
    run.manifest.details = {
        "inputDims": request.dims.as_list(),
        "dataFormat": "channels_last",
        "dataType": request.data_type,
        "stages": run.stages,
        "sdkCompatible": request.sdk_compatible,
        "tensors": _tensors(plain.info),
        "onnxOpset": plain.info.opset,
        "codec": {"etlt": run.codecs[0].name, "tlt": tlt_codec},
        "preprocessing": normalization,
        "fidelity": plain.report.as_dict(),
        "referenceInputs": run.reference,
    }
    if len(graphs) > 1:
        deploy = graphs[1]
        assert deploy.report is not None
        run.manifest.details["deploy"] = {
            "onnx": run.out.final_location(deploy.name),
            "tensors": _tensors(deploy.info),
            "fidelity": deploy.report.as_dict(),
            "etlt": "deploy",  # which graph the .etlt holds
            # Measured on the plain graph, the deploy graph's own tensors added exactly.
            "calibration": "shared" if calibrated is not None else None,
        }
    if calibrated is not None:
        run.manifest.details["calibration"] = calibrated.details
    if fp16 is not None:
        run.manifest.details["fp16"] = {**fp16.as_dict(), "verification": run.fp16_verification}
    if evaluated is not None and request.evaluation is not None:
        run.manifest.details["evaluation"] = evaluation_step.export_block(
            request.evaluation, evaluated
        )
