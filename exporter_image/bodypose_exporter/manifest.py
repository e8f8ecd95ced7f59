"""The `manifest.json` every run writes beside its outputs, and the catalogue of what it lists.

It lists each artifact's path, size and sha256, the input dims, tensor names,
the codec that encrypted the files, tool and library versions and stage
timings. Written last: its presence marks the set complete.

The catalogue (`Kind`, `file_name`) is the one place that names every
artifact kind a manifest can list and the file each is written as; the
stages write through it and read each other's manifests by kind
(`artifact_path`). The operator keeps a mirror of the kinds and names it
reads or passes to Jobs (`bodypose_operator/api/artifacts.py`), checked
against this one by `tests/contract/test_artifact_catalogue.py`.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import metadata
from pathlib import Path
from typing import Any

from bodypose_exporter import __version__

MANIFEST_NAME = "manifest.json"
#: A build whose gate failed: its figures, never beside a manifest.json (stages.build).
REJECTED_MANIFEST_NAME = "manifest.rejected.json"
SCHEMA = "bodypose.dev/export-manifest/v1"
#: The stem of every model file a resource's Jobs write (TAO's notebook names them so).
MODEL_STEM = "bpnet_model"


class Kind(StrEnum):
    """Every artifact kind a manifest lists (`artifacts[].kind`)."""

    ETLT = "etlt"  # the encrypted ONNX, TAO's .etlt
    ONNX = "onnx"  # the plain FP32 ONNX (the evaluated graph)
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
    Kind.DEPLOY_ONNX: ".deploy.onnx",
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


def model_stem(name: str) -> str:
    """`bpnet_model` of `bpnet_model.etlt` / `.onnx` / `.tlt` (the name as given otherwise)."""
    for suffix in (".etlt", ".tlt", ".onnx"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def artifact_path(manifest: dict[str, Any], kind: Kind) -> str | None:
    """Where a manifest says its artifact of `kind` is (old kind names included), or None."""
    for artifact in manifest.get("artifacts", []):
        listed = artifact.get("kind")
        if listed == kind or OLD_KINDS.get(str(listed)) == kind:
            return str(artifact["path"])
    return None


_LIBRARIES = ("tensorflow", "tf-keras", "tf2onnx", "onnx", "onnxruntime", "numpy", "cryptography")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "bodypose-export": __version__}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


@dataclass
class Manifest:
    """Accumulates what a run produced; `write` serialises it."""

    command: str
    inputs: dict[str, Any] = field(default_factory=dict)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def add_artifact(self, kind: Kind, staged: Path, location: str) -> None:
        self.artifacts.append(
            {
                "kind": str(kind),
                "path": location,
                "bytes": staged.stat().st_size,
                "sha256": sha256_of(staged),
            }
        )

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = round(time.perf_counter() - start, 3)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "command": self.command,
            "createdAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "inputs": self.inputs,
            "artifacts": self.artifacts,
            **self.details,
            "versions": library_versions(),
            "timingsSeconds": self.timings,
        }

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")
