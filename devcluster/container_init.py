"""Inside a new mount and PID namespace: set up one container's filesystem, become
its user, and exec its process (which so becomes PID 1, as in a container).

    unshare -m -p -f --propagation private -- python container_init.py SPEC.json

What runc does for a Linux container, reduced to what the local cluster needs
(followed: the OCI runtime spec's config.md for root, mounts, process.cwd,
process.user, and runc's libcontainer/rootfs_linux.go for the order: root
mount, mount points created, /proc /dev /sys, volumes, then read-only root):

- the root is an overlay: the image's unpacked tree (shared, never written)
  below, this container's own directory above, so a writable root costs
  nothing to the image and mount points can be created without touching it;
- /proc for the new PID namespace, a small /dev (tmpfs with null, zero, full,
  random, urandom, tty bound from the host, /dev/shm, the std links), /sys
  read-only, /etc/hosts and /etc/resolv.conf from the host (the pod shares its
  network, as with hostNetwork);
- every volume bound at its mount path, read-only where the pod says so;
- `readOnlyRootFilesystem`: the root mount is made read-only last;
- chroot, chdir to the working directory (created if missing, as runc does),
  supplementary groups, gid, uid, then exec with the container's environment
  (PATH from that environment). An exec that fails is written to SPEC's
  `startError` file and the process exits 128: what containerd reports as
  StartError.

Not isolated: network, UTS, IPC, cgroups, capabilities beyond the uid change.
This is a developer's kubelet, not a sandbox.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
START_ERROR_EXIT = 128


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode:
        raise OSError(f"mount {' '.join(args)}: {done.stderr.strip()}")


def _inside(root: Path, path: str) -> Path:
    """`path` inside `root`, following symlinks as if `root` were `/` (runc's
    securejoin): Debian's /var/run is a link to /run, and an absolute link must
    never lead a mount out of the container's tree."""
    current = root
    parts = [p for p in path.split("/") if p not in ("", ".")]
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            current = current.parent if current != root else root
            continue
        candidate = current / part
        if candidate.is_symlink():
            hops += 1
            if hops > 40:
                raise OSError(f"{path}: too many levels of symbolic links")
            target = os.readlink(candidate)
            if target.startswith("/"):
                current = root
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        current = candidate
    return current


def _mount_point(root: Path, path: str, is_file: bool) -> Path:
    target = _inside(root, path)
    if is_file:
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            target.touch()
    else:
        target.mkdir(parents=True, exist_ok=True)
    return target


def prepare(spec: dict[str, Any]) -> Path:
    root = Path(spec["merged"])
    _mount(
        "-t", "overlay", "overlay", "-o",
        f"lowerdir={spec['rootfs']},upperdir={spec['upper']},workdir={spec['work']}",
        str(root),
    )  # fmt: skip
    _mount("-t", "proc", "proc", str(_mount_point(root, "/proc", False)))
    dev = _mount_point(root, "/dev", False)
    _mount("-t", "tmpfs", "-o", "mode=755,nosuid", "tmpfs", str(dev))
    for name in DEVICES:
        _mount("--bind", f"/dev/{name}", str(_mount_point(root, f"/dev/{name}", True)))
    _mount(
        "-t",
        "tmpfs",
        "-o",
        "mode=1777,nosuid,nodev",
        "shm",
        str(_mount_point(root, "/dev/shm", False)),
    )
    for link, to in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                     ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):  # fmt: skip
        (dev / link).symlink_to(to)
    sys_dir = _mount_point(root, "/sys", False)
    _mount("--rbind", "/sys", str(sys_dir))
    _mount("-o", "remount,bind,ro", str(sys_dir))
    for host_file in ("/etc/hosts", "/etc/resolv.conf"):
        if Path(host_file).is_file():
            _mount("--bind", host_file, str(_mount_point(root, host_file, True)))
    for m in spec["mounts"]:
        target = _mount_point(root, m["target"], Path(m["source"]).is_file())
        _mount("--bind", m["source"], str(target))
        if m.get("readOnly"):
            _mount("-o", "remount,bind,ro", str(target))
    _mount_point(root, spec["cwd"], False)
    if spec.get("readOnlyRoot"):
        _mount("-o", "remount,bind,ro", str(root))
    return root


def main(spec_file: str) -> None:
    spec = json.loads(Path(spec_file).read_text())
    # Opened before chroot: the executor reads it from the host side.
    errors = os.open(spec["startError"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    argv: list[str] = spec["argv"]
    try:
        root = prepare(spec)
        os.chroot(root)
        os.chdir(spec["cwd"])
        os.setgroups(spec.get("groups") or [])
        os.setgid(spec["gid"])
        os.setuid(spec["uid"])
        if not argv:
            raise FileNotFoundError("no command specified")
        os.execvpe(argv[0], argv, spec["env"])
    except FileNotFoundError:
        text = f'exec: "{argv[0] if argv else ""}": executable file not found in $PATH'
    except PermissionError as exc:
        text = f'exec: "{argv[0]}": permission denied ({exc.strerror})'
    except OSError as exc:
        text = f"container init failed: {exc}"
    os.write(errors, text.encode())
    os._exit(START_ERROR_EXIT)


if __name__ == "__main__":
    main(sys.argv[1])
