"""The `manifest.json` every run writes beside its outputs.

It lists each artifact's path, size and sha256, the input dims, tensor names,
the codec that encrypted the files, tool and library versions and stage
timings. Written last: its presence marks the set complete.
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

from bodypose_exporter import __version__

MANIFEST_NAME = "manifest.json"
SCHEMA = "bodypose.dev/export-manifest/v1"
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

    def add_artifact(self, kind: str, staged: Path, location: str) -> None:
        self.artifacts.append(
            {
                "kind": kind,
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
