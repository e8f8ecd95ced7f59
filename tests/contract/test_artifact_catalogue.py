"""The artifact catalogue: the kinds and file names the operator uses are the exporter's.

The operator never imports the exporter (`.importlinter`, "operator-apart"), so it
keeps a mirror of the catalogue in `bodypose_operator/api/artifacts.py`: the kinds
it reads from manifests (the status' artifacts, a target's engine) and the files it
names in Jobs' arguments (the ONNX, the reference, cal.bin ...). The exporter's
catalogue is `bodypose_exporter/manifest.py`. A kind or a name changed on one side
only would leave a status field empty or a build reading a file nobody wrote; here
it fails a test instead.
"""

from __future__ import annotations

import pytest

from bodypose_exporter import manifest as exporter
from bodypose_operator.api import artifacts as operator_side
from bodypose_operator.builders.jobs import build_args, export_args
from bodypose_operator.controller.manifests import shared_artifacts, target_fields
from tests.support.operator_fakes import spec_dict


@pytest.mark.parametrize("kind", list(operator_side.Kind), ids=lambda k: k.name)
def test_every_kind_the_operator_uses_is_the_exporters(kind: operator_side.Kind) -> None:
    assert kind.name in exporter.Kind.__members__, f"the exporter has no Kind.{kind.name}"
    assert exporter.Kind[kind.name].value == kind.value


@pytest.mark.parametrize("kind", list(operator_side.FILE_NAMES), ids=lambda k: k.name)
def test_every_file_the_operator_names_is_where_the_exporter_writes_it(
    kind: operator_side.Kind,
) -> None:
    expected = exporter.file_name(exporter.Kind(kind.value))
    assert operator_side.file_name(kind) == expected


def test_the_shared_names_agree() -> None:
    assert operator_side.MODEL_STEM == exporter.MODEL_STEM
    assert operator_side.MANIFEST_NAME == exporter.MANIFEST_NAME
    # The SDK-compatible graph's files: the operator builds the engine's name from it.
    deploy_onnx = exporter.MODEL_SUFFIXES[exporter.Kind.DEPLOY_ONNX]
    assert deploy_onnx == f"{operator_side.DEPLOY_INFIX}.onnx"


def test_the_files_jobs_are_given_are_catalogued_names() -> None:
    """Every file a Job's arguments name under the artifact prefix is one the exporter's
    catalogue writes (the engine aside: its builder names it)."""
    from bodypose_operator.api.v1alpha1 import BodyPoseExportSpec

    spec = BodyPoseExportSpec.model_validate(spec_dict(
        precision="int8", calibration={"imagesUri": "s3://bucket/images"},
        engine={"sdkCompatible": True},
        evaluation={"annotationsUri": "s3://bucket/a.json", "imagesUri": "s3://bucket/i"},
    ))  # fmt: skip
    prefix = "s3://out/ml/demo/k"
    args = export_args(spec, prefix) + build_args(spec, spec.targets[0], prefix, "i" * 16)
    named = [a for a in args
             if a.startswith(f"{prefix}/") and "/targets/" not in a]  # fmt: skip
    catalogued = {f"{prefix}/{exporter.file_name(k)}" for k in exporter.Kind
                  if k in exporter.FIXED_NAMES or k in exporter.MODEL_SUFFIXES}  # fmt: skip
    assert named and set(named) <= catalogued, set(named) - catalogued


def test_a_manifest_the_exporter_writes_fills_the_status() -> None:
    """The kinds the status reads, listed by the exporter's own Manifest."""
    written = exporter.Manifest("bpnet export")
    written.artifacts = [
        {"kind": str(kind), "path": f"s3://out/{kind}", "sha256": "ab", "bytes": 1}
        for kind in (exporter.Kind.ETLT, exporter.Kind.ONNX, exporter.Kind.CALIBRATION_CACHE,
                     exporter.Kind.QDQ_MODEL, exporter.Kind.ENGINE, exporter.Kind.DEPLOY_ENGINE)
    ]  # fmt: skip
    as_read = written.to_dict()
    assert set(shared_artifacts(as_read, "s3://out/manifest.json")) == {
        "etlt", "onnx", "calibrationCache", "qdqModel", "manifest",
    }  # fmt: skip
    fields = target_fields(as_read)
    assert fields["engineUri"] == "s3://out/engine"
    assert fields["deployEngine"]["uri"] == "s3://out/deploy-engine"


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_a_cpu_targets_artifact_is_named_and_reported_for_the_precision_it_runs(
    precision: str,
) -> None:
    """The operator names the build Job's file for the spec's precision; the build writes it
    under the precision the artifact computes in (ONNX Runtime: fp16 is the FP32 graph), the
    manifest says so, and the status takes both from the manifest."""
    from bodypose_exporter.engines.naming import artifact_file_name
    from bodypose_exporter.engines.registry import backend_by_name
    from bodypose_exporter.stages.build_publish import precision_fields
    from bodypose_operator.api.v1alpha1 import BodyPoseExportSpec
    from bodypose_operator.builders.jobs import engine_file_name

    spec = BodyPoseExportSpec.model_validate(spec_dict(
        precision=precision, targets=[{"name": "cpu", "backend": "onnxruntime"}],
        calibration={"imagesUri": "s3://bucket/images"} if precision == "int8" else None,
    ))  # fmt: skip
    asked = engine_file_name(spec, spec.targets[0])
    assert asked == f"{operator_side.MODEL_STEM}.320.448.{precision}.onnx"
    facts = backend_by_name("onnxruntime").facts
    runs = "fp32" if precision == "fp16" else precision
    written = artifact_file_name(f"s3://out/targets/cpu/i/{asked}", facts, None, precision)
    assert written == f"s3://out/targets/cpu/i/{operator_side.MODEL_STEM}.320.448.{runs}.onnx"
    manifest = {
        "artifacts": [{"kind": "engine", "path": written, "sha256": "ab", "bytes": 1}],
        **precision_fields(facts, precision),
    }
    fields = target_fields(manifest)
    assert (fields["engineUri"], fields["precision"]) == (written, runs)
    assert ("precisionReason" in fields) == (runs != precision)
