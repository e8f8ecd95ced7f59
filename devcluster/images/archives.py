"""OCI archives: what `buildah push` writes, read back (index, manifest, config, size)."""

from __future__ import annotations

import gzip
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devcluster.images.buildah import run_buildah
from devcluster.images.commands import ImageBuildError


@dataclass(frozen=True)
class BuiltImage:
    name: str  # "operator" | "exporter" | "base"
    ref: str  # e.g. "bodypose-export/operator:0.1.0"
    archive: Path  # OCI archive; index.json's org.opencontainers.image.ref.name is `ref`
    digest: str  # "sha256:..." manifest digest
    size_bytes: int  # uncompressed


def _read_member(tar: tarfile.TarFile, name: str) -> bytes:
    member = tar.extractfile(name)
    if member is None:
        raise ImageBuildError(f"{tar.name!s}: no {name}")
    return member.read()


def read_archive(archive: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """index.json, the manifest and the image config of a single-image OCI archive."""
    with tarfile.open(archive) as tar:
        index = json.loads(_read_member(tar, "index.json"))
        digest = index["manifests"][0]["digest"]
        manifest = json.loads(_read_member(tar, "blobs/sha256/" + digest.split(":", 1)[1]))
        config_digest = manifest["config"]["digest"]
        config = json.loads(_read_member(tar, "blobs/sha256/" + config_digest.split(":", 1)[1]))
    return index, manifest, config


def _uncompressed_size(archive: Path, manifest: dict[str, Any]) -> int:
    total = 0
    with tarfile.open(archive) as tar:
        for layer in manifest["layers"]:
            blob = tar.extractfile("blobs/sha256/" + layer["digest"].split(":", 1)[1])
            if blob is None:
                raise ImageBuildError(f"{archive}: layer {layer['digest']} missing")
            if layer["mediaType"].endswith("+gzip"):
                with gzip.GzipFile(fileobj=blob) as stream:
                    while chunk := stream.read(1 << 20):
                        total += len(chunk)
            else:
                total += int(layer["size"])
    return total


def describe(name: str, ref: str, archive: Path) -> BuiltImage:
    """From the sidecar written next to the archive, else from the archive itself."""
    sidecar = archive.with_suffix(".json")
    if sidecar.exists():
        meta = json.loads(sidecar.read_text())
        if meta.get("ref") == ref:
            return BuiltImage(name, ref, archive, str(meta["digest"]), int(meta["size_bytes"]))
    index, manifest, _ = read_archive(archive)
    digest = str(index["manifests"][0]["digest"])
    size = _uncompressed_size(archive, manifest)
    sidecar.write_text(json.dumps({"ref": ref, "digest": digest, "size_bytes": size}) + "\n")
    return BuiltImage(name, ref, archive, digest, size)


def save(name: str, local_tag: str, ref: str, archive: Path) -> BuiltImage:
    """`buildah push` to a temporary file, renamed into place once complete."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(archive.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        run_buildah("push", "--quiet", local_tag, f"oci-archive:{partial}:{ref}")
        partial.replace(archive)
    finally:
        partial.unlink(missing_ok=True)
    archive.with_suffix(".json").unlink(missing_ok=True)
    return describe(name, ref, archive)
