"""The real images: built (or found by content key) with buildah, checked in their archives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devcluster.images import BuiltImage, ensure_images, read_archive, version
from devcluster.images.buildah import storage

ROOT = Path(__file__).resolve().parents[2]
MB = 1000 * 1000


@pytest.fixture(scope="module")
def images() -> dict[str, BuiltImage]:
    return {image.name: image for image in ensure_images(progress=sys.stderr)}


def layer_paths(archive: Path, manifest: dict[str, object]) -> Iterator[str]:
    """Every path in every layer of the archive, streamed (nothing unpacked to disk)."""
    layers = manifest["layers"]
    assert isinstance(layers, list)
    with tarfile.open(archive) as outer:
        for layer in layers:
            blob = outer.extractfile("blobs/sha256/" + layer["digest"].split(":", 1)[1])
            assert blob is not None
            gzipped = layer["mediaType"].endswith("+gzip")
            with (
                tarfile.open(fileobj=blob, mode="r|gz")
                if gzipped
                else tarfile.open(fileobj=blob, mode="r|")
            ) as inner:
                for member in inner:
                    yield member.name.removeprefix("./")


@pytest.mark.parametrize("name", ["operator", "exporter"])
def test_archive_config_user_labels_and_env(images: dict[str, BuiltImage], name: str) -> None:
    image = images[name]
    assert image.archive.is_file()
    assert image.ref == f"bodypose-export/{name}:{version()}"
    index, _, config = read_archive(image.archive)
    entry = index["manifests"][0]
    assert entry["digest"] == image.digest
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == image.ref
    settings = config["config"]
    assert settings["User"] == "1000:1000"
    labels = settings["Labels"]
    assert labels["org.opencontainers.image.version"] == version()
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    for key in ("revision", "created", "source", "title"):
        assert labels[f"org.opencontainers.image.{key}"], key
    env = dict(item.split("=", 1) for item in settings["Env"])
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert env["HOME"] == "/tmp" and env["PYTHONDONTWRITEBYTECODE"] == "1"
    if name == "operator":
        assert settings["Entrypoint"] == ["bodypose-operator"]
    else:
        assert not settings.get("Entrypoint")
        assert settings["Cmd"] == ["bpnet-export", "--help"]


def test_skopeo_reads_the_operator_archive(images: dict[str, BuiltImage]) -> None:
    image = images["operator"]
    out = subprocess.run(
        ["skopeo", "inspect", "--config", f"oci-archive:{image.archive}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    config = json.loads(out)["config"]
    assert config["User"] == "1000:1000"
    assert config["Entrypoint"] == ["bodypose-operator"]
    digest = json.loads(
        subprocess.run(
            ["skopeo", "inspect", f"oci-archive:{image.archive}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )["Digest"]
    assert digest == image.digest


def test_operator_is_small_and_has_no_tensorflow(images: dict[str, BuiltImage]) -> None:
    image = images["operator"]
    assert image.size_bytes < 400 * MB, image.size_bytes
    _, manifest, _ = read_archive(image.archive)
    venv = [p for p in layer_paths(image.archive, manifest) if p.startswith("opt/venv/")]
    site = "opt/venv/lib/python3.11/site-packages/"
    assert any(p.startswith(site + "kopf/") for p in venv)
    assert any(p.startswith(site + "bodypose_operator/") for p in venv)
    heavy = tuple(site + package for package in ("tensorflow", "tensorrt", "onnx"))
    assert not [p for p in venv if p.startswith(heavy)]
    # Bytecode is there already: the root filesystem is read-only at run time.
    assert any(p.startswith(site + "bodypose_operator/__pycache__/") for p in venv)


def test_exporter_is_under_three_gigabytes(images: dict[str, BuiltImage]) -> None:
    assert images["exporter"].size_bytes < 3000 * MB, images["exporter"].size_bytes


def test_a_second_ensure_finds_every_archive(images: dict[str, BuiltImage]) -> None:
    again = {image.name: image for image in ensure_images()}
    assert again == images


def _all_image_ids() -> set[str]:
    out = subprocess.run(
        ["buildah", *storage().args(), "images", "--all", "--quiet", "--no-trunc"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


def test_failed_build_names_the_step_without_a_traceback(
    images: dict[str, BuiltImage], tmp_path: Path
) -> None:
    tag = f"test-{uuid.uuid4().hex[:12]}"
    before = _all_image_ids()
    env = {**os.environ, "BODYPOSE_IMAGE_CACHE": str(tmp_path / "cache")}
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "devcluster.images",
                "build",
                "--only",
                "operator",
                "--no-cache",
                "--index-url",
                "http://127.0.0.1:9/simple",
                "--tag",
                tag,
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        ids = _all_image_ids() - before
        subprocess.run(
            [
                "buildah",
                *storage().args(),
                "rmi",
                "--force",
                f"localhost/bodypose-export/operator:{tag}",
                *ids,
            ],
            capture_output=True,
            check=False,
        )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "Traceback" not in output, output
    assert "retrying" not in output, output  # a Dockerfile's own failure is not retried
    failed = [line for line in output.splitlines() if "failed at step" in line]
    assert failed, output
    assert failed[0].startswith("make images: operator failed at step RUN "), failed
    assert "install-python-env.sh deps" in failed[0], failed
    assert not list((tmp_path / "cache").glob("operator-*.tar"))
    assert _all_image_ids() - before == set()
