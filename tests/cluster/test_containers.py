"""How the local kubelet combines a pod's container with its image: pure rules, no cluster."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from devcluster.containers import ConfigError, command_line, identity, image_env, working_dir
from devcluster.image_store import normalize, repository

IMAGE = {
    "Entrypoint": ["bodypose-operator"],
    "Cmd": ["--help"],
    "Env": ["PATH=/opt/venv/bin:/usr/bin", "HOME=/tmp", "EMPTY="],
    "WorkingDir": "/tmp",
    "User": "1000:1000",
}


@pytest.mark.parametrize(
    ("command", "args", "expected"),
    [
        (None, None, ["bodypose-operator", "--help"]),  # ENTRYPOINT + CMD
        (None, ["--namespace=a"], ["bodypose-operator", "--namespace=a"]),  # args replace CMD
        (["bpnet-export"], None, ["bpnet-export"]),  # command drops ENTRYPOINT and CMD
        (["bpnet-build"], ["--onnx", "x"], ["bpnet-build", "--onnx", "x"]),
    ],
)
def test_command_and_args_against_entrypoint_and_cmd(
    command: list[str] | None, args: list[str] | None, expected: list[str]
) -> None:
    assert command_line(command, args, IMAGE) == expected


def test_image_env_and_working_dir() -> None:
    assert image_env(IMAGE) == {"PATH": "/opt/venv/bin:/usr/bin", "HOME": "/tmp", "EMPTY": ""}
    assert working_dir(None, IMAGE) == "/tmp"
    assert working_dir("/scratch", IMAGE) == "/scratch"
    assert working_dir(None, {}) == "/"


def sc(**fields: object) -> SimpleNamespace:
    names = ("run_as_user", "run_as_group", "run_as_non_root", "fs_group", "supplemental_groups")
    return SimpleNamespace(**{n: fields.get(n) for n in names})


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nbodypose:x:1000:1000::/tmp:/usr/sbin/nologin\n"
        "app:x:1500:1600::/tmp:/bin/sh\n"
    )
    (tmp_path / "etc" / "group").write_text("root:x:0:\nbodypose:x:1000:\nstaff:x:50:\n")
    return tmp_path


def test_identity_from_the_pod_over_the_image(rootfs: Path) -> None:
    who = identity(sc(run_as_user=2000), sc(run_as_group=3000, fs_group=4000), IMAGE, rootfs)
    assert (who.uid, who.gid, who.groups) == (2000, 3000, (4000,))
    image_only = identity(None, None, IMAGE, rootfs)
    assert (image_only.uid, image_only.gid, image_only.groups) == (1000, 1000, ())
    # A uid alone takes its primary group from the image's /etc/passwd; names resolve there.
    assert identity(sc(run_as_user=1500), None, {}, rootfs).gid == 1600
    named = identity(None, None, {"User": "app:staff"}, rootfs)
    assert (named.uid, named.gid) == (1500, 50)


def test_run_as_non_root_refuses_root_with_the_kubelets_words(rootfs: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"^container has runAsNonRoot and image will run as root$"
    ):
        identity(None, sc(run_as_non_root=True), {"User": ""}, rootfs)
    with pytest.raises(ConfigError, match=r"image has non-numeric user \(app\), cannot verify"):
        identity(sc(run_as_non_root=True), None, {"User": "app"}, rootfs)
    # With a numeric runAsUser the image's name does not matter.
    assert identity(sc(run_as_non_root=True, run_as_user=1000), None, {"User": "app"}, rootfs)


@pytest.mark.parametrize(
    ("ref", "normal"),
    [
        ("bodypose-export/exporter:0.1.0", "docker.io/bodypose-export/exporter:0.1.0"),
        ("busybox", "docker.io/library/busybox:latest"),
        ("localhost/exp:1", "localhost/exp:1"),
        ("registry.example:5000/team/op", "registry.example:5000/team/op:latest"),
        ("nvcr.io/nvidia/tensorrt:24.12-py3", "nvcr.io/nvidia/tensorrt:24.12-py3"),
        ("x/y@sha256:abc", "docker.io/x/y@sha256:abc"),
    ],
)
def test_references_normalise_as_containerd_does(ref: str, normal: str) -> None:
    assert normalize(ref) == normal


def test_repository_is_the_image_id_prefix() -> None:
    assert repository("bodypose-export/base:bookworm") == "docker.io/bodypose-export/base"
    assert repository("registry.example:5000/team/op:1") == "registry.example:5000/team/op"
