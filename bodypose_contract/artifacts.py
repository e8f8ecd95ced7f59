"""The artifact catalogue: every kind a manifest lists and the file each is written as.

The exporter's stages write through it (`bodypose_exporter/manifest.py` re-exports
it) and the operator names the files its Jobs read and the kinds its status shows
from it, so a kind or a name cannot change on one side only.

Layout of one artifact set (docs/architecture.md, "S3 layout"):
`<prefix>/` holds the export's files and its `manifest.json`;
`<prefix>/targets/<target>/<identity>/` holds one target's artifact and its
`manifest.json` (`target.target_prefix`).
"""

from __future__ import annotations

from enum import StrEnum

#: Written last by every stage: its presence marks the stage complete.
MANIFEST_NAME = "manifest.json"
#: A build whose gate failed: its figures, never beside a manifest.json.
REJECTED_MANIFEST_NAME = "manifest.rejected.json"
#: The stem of every model file a resource's Jobs write (TAO's notebooks name them so).
MODEL_STEM = "bpnet_model"
#: Under an artifact set's prefix, one folder per target.
TARGETS_DIR = "targets"
#: Files of the SDK-compatible graph carry it before their suffix (`.deploy.onnx`).
DEPLOY_INFIX = ".deploy"


class Kind(StrEnum):
    """Every artifact kind a manifest lists (`artifacts[].kind`)."""

    ETLT = "etlt"  # the encrypted ONNX, TAO's .etlt
    ONNX = "onnx"  # the plain FP32 ONNX (the evaluated graph, what builds start from)
    DEPLOY_ONNX = "deploy-onnx"  # the SDK-compatible graph (--sdk_compatible_model)
    REFERENCE = "reference"  # inputs and FP32 outputs engines are verified against
    EVALUATION = "evaluation-reference"  # the FP32 model's OKS AP on the evaluation set
    CALIBRATION_CACHE = "calibration-cache"  # cal.bin, TensorRT's calibration-cache format
    QDQ_MODEL = "qdq-model"  # the explicitly quantized ONNX
    FP16_ONNX = "fp16-onnx"  # the FP16 mixed-precision ONNX, FP32 inputs and outputs
    CALIBRATION_RANGES = "calibration-ranges"  # every tensor's range by every method
    ENGINE = "engine"  # a target's engine or CPU artifact
    TRITON_CONFIG = "triton-config"
    TRITON_MODEL = "triton-model"
    DEEPSTREAM_CONFIG = "deepstream-config"
    EPCONTEXT_MODEL = "epcontext-model"  # ONNX Runtime's EPContext model wrapping an engine
    DEPLOY_ENGINE = "deploy-engine"  # the SDK-compatible engine beside the evaluated one
    DEPLOY_TRITON_CONFIG = "deploy-triton-config"
    DEPLOY_TRITON_MODEL = "deploy-triton-model"
    DEPLOY_DEEPSTREAM_CONFIG = "deploy-deepstream-config"


#: Kinds written under a fixed name (the others are named after the model or the engine).
FIXED_NAMES: dict[Kind, str] = {
    Kind.REFERENCE: "reference.npz",
    Kind.EVALUATION: "evaluation.json",
    Kind.CALIBRATION_CACHE: "cal.bin",
    Kind.CALIBRATION_RANGES: "calibration.json",
    Kind.DEEPSTREAM_CONFIG: "bodypose2d_pgie_config.txt",
    Kind.DEPLOY_DEEPSTREAM_CONFIG: "bodypose2d_pgie_config.deploy.txt",
}
#: Kinds named after the model's stem: `<stem><suffix>`.
MODEL_SUFFIXES: dict[Kind, str] = {
    Kind.ETLT: ".etlt",
    Kind.ONNX: ".onnx",
    Kind.DEPLOY_ONNX: DEPLOY_INFIX + ".onnx",
    Kind.QDQ_MODEL: ".qdq.onnx",
    Kind.FP16_ONNX: ".fp16.onnx",
}
#: Names manifests written before the catalogue used for the same kinds (still read).
OLD_KINDS: dict[str, Kind] = {"cal-cache": Kind.CALIBRATION_CACHE, "qdq": Kind.QDQ_MODEL}


def file_name(kind: Kind, stem: str = MODEL_STEM) -> str:
    """The file an artifact of `kind` is written as (`stem`: the model's, e.g. from `-o`)."""
    if kind in FIXED_NAMES:
        return FIXED_NAMES[kind]
    if kind in MODEL_SUFFIXES:
        return stem + MODEL_SUFFIXES[kind]
    raise ValueError(f"{kind} is named after its engine, not a fixed file name")
