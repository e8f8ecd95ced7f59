"""From a pod's container and its image's config to what runs: argv, environment,
working directory and user, combined the way Kubernetes combines them.

Pure functions (tested without a cluster). Followed: "Define a Command and
Arguments for a Container" (kubernetes.io/docs/tasks/inject-data-application/
define-command-argument-container/#notes) for command/args against the image's
ENTRYPOINT/CMD; the OCI image spec's config.md for `User` ("uid", "uid:gid",
"user", "user:group") and `Env`; the kubelet's `verifyRunAsNonRoot` for the
refusal text of a root container under `runAsNonRoot`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    """What a kubelet reports as CreateContainerConfigError: the pod waits."""


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int
    groups: tuple[int, ...]


def command_line(
    command: list[str] | None, args: list[str] | None, image: dict[str, Any]
) -> list[str]:
    """`command` replaces ENTRYPOINT and drops CMD; `args` alone replaces CMD."""
    entrypoint = list(image.get("Entrypoint") or [])
    cmd = list(image.get("Cmd") or [])
    if command:
        return [*command, *(args or [])]
    if args:
        return [*entrypoint, *args]
    return [*entrypoint, *cmd]


def image_env(image: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in image.get("Env") or []:
        name, _, value = str(item).partition("=")
        env[name] = value
    return env


def working_dir(container_dir: str | None, image: dict[str, Any]) -> str:
    return container_dir or str(image.get("WorkingDir") or "") or "/"


def _lookup(rootfs: Path, table: str, key: str, field: int) -> int | None:
    """A name's id, or a uid's primary gid, from the image's own /etc/passwd or /etc/group."""
    try:
        lines = (rootfs / "etc" / table).read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split(":")
        if len(parts) > field and (parts[0] == key or (table == "passwd" and parts[2] == key)):
            try:
                return int(parts[field])
            except ValueError:
                return None
    return None


def _id(value: str, rootfs: Path, table: str) -> int:
    if value.isdigit():
        return int(value)
    found = _lookup(rootfs, table, value, 2)
    if found is None:
        raise ConfigError(f"unable to find {'user' if table == 'passwd' else 'group'} {value}")
    return found


def identity(container_sc: Any, pod_sc: Any, image: dict[str, Any], rootfs: Path) -> Identity:
    """The uid, gid and supplementary groups the process runs with.

    runAsUser/runAsGroup (container over pod) win over the image's `User`; a uid
    without a group takes its primary group from the image's /etc/passwd (0 if
    none); fsGroup and supplementalGroups are added as supplementary groups."""

    def pick(attr: str) -> Any:
        for sc in (container_sc, pod_sc):
            value = getattr(sc, attr, None) if sc is not None else None
            if value is not None:
                return value
        return None

    user, _, group = str(image.get("User") or "").partition(":")
    non_root = bool(pick("run_as_non_root"))
    if non_root and pick("run_as_user") is None and user and not user.isdigit():
        raise ConfigError(
            f"container has runAsNonRoot and image has non-numeric user ({user}), "
            "cannot verify user is non-root"
        )
    uid = pick("run_as_user")
    if uid is None:
        uid = _id(user, rootfs, "passwd") if user else 0
    gid = pick("run_as_group")
    if gid is None:
        primary = _lookup(rootfs, "passwd", str(uid), 3)
        gid = _id(group, rootfs, "group") if group else primary or 0
    if non_root and uid == 0:
        raise ConfigError("container has runAsNonRoot and image will run as root")
    groups: list[int] = []
    if pod_sc is not None:
        if pod_sc.fs_group is not None:
            groups.append(int(pod_sc.fs_group))
        groups += [int(g) for g in pod_sc.supplemental_groups or []]
    return Identity(int(uid), int(gid), tuple(dict.fromkeys(groups)))
