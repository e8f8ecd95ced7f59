"""The artifact catalogue: the kinds and file names the operator uses are the exporter's.

The operator never imports the exporter (`.importlinter`, "operator-apart"); both
import the catalogue from the contract both images install
(`bodypose_contract/artifacts.py`). The exporter re-exports it
(`bodypose_exporter/manifest.py`); the operator names the files its Jobs read (the
ONNX, the reference, cal.bin ...) and the kinds its status shows from it. A kind or
a name used on one side only, or a mirror grown back on one side, would leave a
status field empty or a build reading a file nobody wrote; here it fails a test
instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import bodypose_contract.artifacts as contract
from bodypose_exporter import manifest as exporter
from bodypose_operator.builders import jobs
from bodypose_operator.builders.jobs import build_args, export_args
from bodypose_operator.controller import decide, manifests, observe
from bodypose_operator.controller.manifests import shared_artifacts, target_fields
from tests.support.operator_fakes import spec_dict

OPERATOR = Path(__file__).resolve().parents[2] / "operator" / "bodypose_operator"


def test_the_exporter_writes_the_contracts_catalogue() -> None:
    assert exporter.Kind is contract.Kind
    assert exporter.file_name is contract.file_name
    assert exporter.FIXED_NAMES is contract.FIXED_NAMES
    assert exporter.MODEL_SUFFIXES is contract.MODEL_SUFFIXES


@pytest.mark.parametrize("module", [jobs, manifests, observe, decide], ids=lambda m: m.__name__)
def test_the_operator_reads_the_contracts_catalogue(module: object) -> None:
    for name in ("Kind", "file_name", "MANIFEST_NAME", "MODEL_STEM", "DEPLOY_INFIX"):
        if hasattr(module, name):
            assert getattr(module, name) is getattr(contract, name), name


def test_the_operator_keeps_no_mirror_of_the_catalogue() -> None:
    """No operator module defines a kind or a catalogued file name as a literal of its own."""
    names = {*contract.FIXED_NAMES.values(), *(k.value for k in contract.Kind)}
    names |= {contract.file_name(k) for k in contract.MODEL_SUFFIXES}
    names -= {"onnx", "etlt", "engine", "reference"}  # also the status keys of the artifacts
    offenders = [
        f"{path.relative_to(OPERATOR)}: {node.value!r}"
        for path in sorted(OPERATOR.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and node.value in names
    ]
    assert offenders == []


@pytest.mark.parametrize("kind", list(contract.Kind), ids=lambda k: k.name)
def test_every_kind_a_file_is_named_for_has_one_name(kind: contract.Kind) -> None:
    if kind in contract.FIXED_NAMES or kind in contract.MODEL_SUFFIXES:
        assert contract.file_name(kind).startswith(
            (contract.MODEL_STEM, *contract.FIXED_NAMES.values())
        )
    else:
        with pytest.raises(ValueError):
            contract.file_name(kind)


def test_the_shared_names_agree() -> None:
    assert exporter.MODEL_STEM == contract.MODEL_STEM == "bpnet_model"
    assert exporter.MANIFEST_NAME == contract.MANIFEST_NAME == "manifest.json"
    # The SDK-compatible graph's files: the operator builds the engine's name from it.
    deploy_onnx = exporter.MODEL_SUFFIXES[exporter.Kind.DEPLOY_ONNX]
    assert deploy_onnx == f"{contract.DEPLOY_INFIX}.onnx"


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
    assert asked == f"{contract.MODEL_STEM}.320.448.{precision}.onnx"
    facts = backend_by_name("onnxruntime").facts
    runs = "fp32" if precision == "fp16" else precision
    written = artifact_file_name(f"s3://out/targets/cpu/i/{asked}", facts, None, precision)
    assert written == f"s3://out/targets/cpu/i/{contract.MODEL_STEM}.320.448.{runs}.onnx"
    manifest = {
        "artifacts": [{"kind": "engine", "path": written, "sha256": "ab", "bytes": 1}],
        **precision_fields(facts, precision),
    }
    fields = target_fields(manifest)
    assert (fields["engineUri"], fields["precision"]) == (written, runs)
    assert ("precisionReason" in fields) == (runs != precision)
