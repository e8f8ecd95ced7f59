"""The artifacts the operator names: kinds it reads from manifests, files it passes to Jobs.

A mirror of the exporter's catalogue (`bodypose_exporter/manifest.py`: `Kind`,
`file_name`, `MODEL_STEM`, `MANIFEST_NAME`), which the operator cannot import:
it never imports the exporter (the `operator-apart` contract in `.importlinter`),
so that its image carries neither TensorFlow nor TensorRT. Only what the operator
uses is here; `tests/contract/test_artifact_catalogue.py` checks every kind and
file name against the exporter's, so the two cannot drift apart unnoticed.

Layout of one artifact set (docs/architecture.md, "S3 layout"):
`<prefix>/` holds the export's files and its `manifest.json`;
`<prefix>/targets/<target>/` holds one target's artifact and its `manifest.json`.
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    """Artifact kinds (a manifest's `artifacts[].kind`) the operator reads or names."""

    ETLT = "etlt"  # the encrypted ONNX, TAO's .etlt
    ONNX = "onnx"  # the plain FP32 ONNX the builds start from
    DEPLOY_ONNX = "deploy-onnx"  # the SDK-compatible graph (engine.sdkCompatible)
    REFERENCE = "reference"  # inputs and FP32 outputs each build is verified against
    EVALUATION = "evaluation-reference"  # the FP32 model's AP on the evaluation set
    CALIBRATION_CACHE = "calibration-cache"  # cal.bin
    QDQ_MODEL = "qdq-model"  # the explicitly quantized ONNX (int8)
    FP16_ONNX = "fp16-onnx"  # the FP16 mixed-precision ONNX (fp16)
    ENGINE = "engine"  # a target's engine or CPU artifact
    DEPLOY_ENGINE = "deploy-engine"  # the SDK-compatible engine beside the evaluated one


#: The stem of every model file the Jobs write (TAO's notebooks name them so).
MODEL_STEM = "bpnet_model"
#: Written last by every stage: its presence marks the stage complete.
MANIFEST_NAME = "manifest.json"
#: Under an artifact set's prefix, one folder per target.
TARGETS_DIR = "targets"
#: Files of the SDK-compatible graph carry it before their suffix (`.deploy.onnx`).
DEPLOY_INFIX = ".deploy"

#: The file each kind the operator passes to a Job is written as.
FILE_NAMES: dict[Kind, str] = {
    Kind.ETLT: "bpnet_model.etlt",
    Kind.ONNX: "bpnet_model.onnx",
    Kind.DEPLOY_ONNX: "bpnet_model.deploy.onnx",
    Kind.QDQ_MODEL: "bpnet_model.qdq.onnx",
    Kind.FP16_ONNX: "bpnet_model.fp16.onnx",
    Kind.REFERENCE: "reference.npz",
    Kind.EVALUATION: "evaluation.json",
    Kind.CALIBRATION_CACHE: "cal.bin",
}


def file_name(kind: Kind) -> str:
    """The file an artifact of `kind` is written as (engines are named by the builder)."""
    return FILE_NAMES[kind]
