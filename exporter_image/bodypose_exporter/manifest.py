"""The `manifest.json` every run writes beside its outputs, and the catalogue of what it lists.

It lists each artifact's path, size and sha256, the input dims, tensor names,
the codec that encrypted the files, tool and library versions and stage
timings. Written last: its presence marks the set complete.

The catalogue (`Kind`, `file_name`) lives in the contract both images install
(`bodypose_contract/artifacts.py`), the one place that names every artifact
kind a manifest can list and the file each is written as; it is re-exported
here for the stages, which write through it and read each other's manifests
by kind (`artifact_path`). The operator reads the same catalogue.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from bodypose_contract import manifest as manifest_schema
from bodypose_contract.artifacts import (
    FIXED_NAMES,
    MANIFEST_NAME,
    MODEL_STEM,
    MODEL_SUFFIXES,
    OLD_KINDS,
    REJECTED_MANIFEST_NAME,
    Kind,
    file_name,
)
from bodypose_exporter import __version__

__all__ = [
    "FIXED_NAMES",
    "MANIFEST_NAME",
    "MODEL_STEM",
    "MODEL_SUFFIXES",
    "OLD_KINDS",
    "REJECTED_MANIFEST_NAME",
    "SCHEMA",
    "Kind",
    "Manifest",
    "artifact_path",
    "file_name",
    "library_versions",
    "model_stem",
    "sha256_of",
]

#: The manifest's schema (its keys: `bodypose_contract.manifest`).
SCHEMA = manifest_schema.SCHEMA


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
        entry: manifest_schema.ArtifactEntry = {
            "kind": str(kind),
            "path": location,
            "bytes": staged.stat().st_size,
            "sha256": sha256_of(staged),
        }
        self.artifacts.append(dict(entry))

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
