"""How many CPUs this process may use: its CPU affinity and its cgroup's CPU quota.

A Kubernetes CPU limit reaches a container as a CFS quota on its cgroup
(`cpu.max` in cgroup v2, `cpu.cfs_quota_us` / `cpu.cfs_period_us` in v1), not
as fewer CPUs: `os.cpu_count()` still says the node's count. ONNX Runtime
sizes its default thread pool by physical cores and affinity and never reads
the quota, so a pod limited to 1 CPU on a 64-core node would run 32 threads
that the kernel throttles. A runner that times an engine therefore sets its
thread count from this budget (`budget().threads`), and the latency record
says what it was and where it came from (`CpuBudget.describe`).

Quota files and their meaning: https://docs.kernel.org/admin-guide/cgroup-v2.html
("cpu.max") and https://docs.kernel.org/scheduler/sched-bwc.html (v1); how a
limit becomes a quota:
https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/#how-pods-with-resource-limits-are-run
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


@dataclass(frozen=True)
class Quota:
    """A CFS bandwidth limit: `cpus` CPUs' worth of time per period, from `source`."""

    cpus: float
    source: Path


@dataclass(frozen=True)
class CpuBudget:
    affinity: int  # CPUs the process may be scheduled on (os.sched_getaffinity)
    online: int  # CPUs the machine has (os.cpu_count)
    quota: Quota | None  # the tightest quota on the process's cgroup and its parents

    @property
    def threads(self) -> int:
        """min(affinity, ceil(quota)), at least 1: more threads than that only wait."""
        usable = self.affinity
        if self.quota is not None:
            usable = min(usable, math.ceil(round(self.quota.cpus, 6)))
        return max(1, usable)

    def describe(self) -> str:
        """E.g. "affinity 1 of 2 CPUs, no quota", "affinity 64 of 64 CPUs, quota 2 CPUs
        (/sys/fs/cgroup/cpu.max)"."""
        where = f"affinity {self.affinity} of {self.online} CPUs"
        if self.quota is None:
            return f"{where}, no quota"
        return f"{where}, quota {_number(self.quota.cpus)} CPUs ({self.quota.source})"

    def record(self) -> dict[str, Any]:
        """The manifest's words for the slice of the machine a figure was measured on."""
        return {
            "affinity": self.affinity,
            "onlineCpus": self.online,
            "quotaCpus": None if self.quota is None else round(self.quota.cpus, 6),
            "quotaSource": None if self.quota is None else str(self.quota.source),
            "threads": self.threads,
            "from": self.describe(),
        }


def _number(value: float) -> str:
    return f"{value:g}"


def _ancestors(mount: Path, path: str) -> Iterator[Path]:
    """The cgroup's directory under `mount` and each parent up to `mount` itself, those
    that exist (a container without its own cgroup namespace sees the host's path in
    /proc/self/cgroup, under which its own mount has nothing: then only `mount`)."""
    parts = [p for p in path.strip("/").split("/") if p and p != ".."]
    for depth in range(len(parts), -1, -1):
        here = mount.joinpath(*parts[:depth])
        if here.is_dir():
            yield here


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _v2_quota(directory: Path) -> Quota | None:
    """`cpu.max`: "$MAX $PERIOD", MAX "max" for none."""
    text = _read(directory / "cpu.max")
    if not text:
        return None
    fields = text.split()
    if len(fields) != 2 or fields[0] == "max":
        return None
    try:
        quota, period = int(fields[0]), int(fields[1])
    except ValueError:
        return None
    return Quota(quota / period, directory / "cpu.max") if quota > 0 and period > 0 else None


def _v1_quota(directory: Path) -> Quota | None:
    """`cpu.cfs_quota_us` (-1 for none) over `cpu.cfs_period_us`."""
    quota_text, period_text = (
        _read(directory / "cpu.cfs_quota_us"),
        _read(directory / "cpu.cfs_period_us"),
    )
    try:
        quota, period = int(quota_text or "-1"), int(period_text or "0")
    except ValueError:
        return None
    if quota <= 0 or period <= 0:
        return None
    return Quota(quota / period, directory / "cpu.cfs_quota_us")


def _v1_cpu_mount(root: Path) -> Path | None:
    """The v1 hierarchy with the cpu controller: `cpu`, or a co-mount such as `cpu,cpuacct`."""
    if (root / "cpu").is_dir():
        return root / "cpu"
    for entry in sorted(root.iterdir()) if root.is_dir() else ():
        if entry.is_dir() and "cpu" in entry.name.split(","):
            return entry
    return None


def read_quota(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> Quota | None:
    """The tightest CPU quota on this process's cgroup and its ancestors (cgroup v2, or the
    v1 cpu controller), or None where there is none or nothing can be read."""
    found: list[Quota] = []
    for line in (_read(proc_cgroup) or "").splitlines():
        hierarchy, controllers, path = [*line.split(":", 2), "", ""][:3]
        if hierarchy == "0" and controllers == "":
            # cgroup v2: mounted at the root (unified), or under it beside v1 (hybrid,
            # where the cpu controller is usually v1's and cpu.max absent).
            mount = root if (root / "cgroup.controllers").is_file() else root / "unified"
            found += [q for d in _ancestors(mount, path) if (q := _v2_quota(d))]
        elif "cpu" in controllers.split(","):
            mount_v1 = _v1_cpu_mount(root)
            if mount_v1 is not None:
                found += [q for d in _ancestors(mount_v1, path) if (q := _v1_quota(d))]
    return min(found, key=lambda q: q.cpus) if found else None


def affinity() -> int:
    """The CPUs this process may run on (`taskset`, a cpuset, Kubernetes' static CPU
    manager all narrow it); the machine's count where the platform has no affinity."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def budget(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> CpuBudget:
    """This process's CPU budget now."""
    return CpuBudget(affinity(), os.cpu_count() or 1, read_quota(root, proc_cgroup))
