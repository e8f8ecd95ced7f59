"""The CPU budget a runner sizes its threads by: affinity and the cgroup's CPU quota.

The quota files are laid out under a temporary root as the kernel lays them out
(cgroup v2 `cpu.max`, v1 `cpu.cfs_quota_us`/`cpu.cfs_period_us`, the process's
path from /proc/self/cgroup); the last test reads this machine's own.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bodypose_exporter.engines.cpu_budget import CpuBudget, Quota, budget, read_quota


def _v2(tmp_path: Path, quotas: dict[str, str], path: str = "/kubepods/pod1/c1") -> Path:
    """A cgroup v2 root with `cpu.max` files at the given cgroup paths; /proc/self/cgroup."""
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (root / path.strip("/")).mkdir(parents=True, exist_ok=True)
    for where, text in quotas.items():
        (root / where.strip("/") / "cpu.max").write_text(text + "\n")
    (tmp_path / "self-cgroup").write_text(f"0::{path}\n")
    return root


def test_a_v2_quota_of_one_cpu_gives_one_thread(tmp_path: Path) -> None:
    root = _v2(tmp_path, {"/kubepods/pod1/c1": "100000 100000"})
    quota = read_quota(root, tmp_path / "self-cgroup")
    assert quota == Quota(1.0, root / "kubepods/pod1/c1/cpu.max")
    here = CpuBudget(affinity=2, online=2, quota=quota)
    assert here.threads == 1
    assert here.describe() == f"affinity 2 of 2 CPUs, quota 1 CPUs ({quota.source})"
    assert here.record()["quotaCpus"] == 1.0 and here.record()["threads"] == 1


def test_a_fractional_quota_rounds_up_and_the_tightest_ancestor_wins(tmp_path: Path) -> None:
    root = _v2(tmp_path, {"/kubepods": "max 100000", "/kubepods/pod1": "250000 100000",
                          "/kubepods/pod1/c1": "max 100000"})  # fmt: skip
    quota = read_quota(root, tmp_path / "self-cgroup")
    assert quota is not None and quota.cpus == 2.5 and quota.source.parent.name == "pod1"
    assert CpuBudget(8, 8, quota).threads == 3
    assert CpuBudget(2, 8, quota).threads == 2  # affinity narrower than the quota
    assert CpuBudget(4, 8, Quota(0.5, quota.source)).threads == 1  # never 0


def test_no_quota_means_affinity_alone(tmp_path: Path) -> None:
    root = _v2(tmp_path, {"/kubepods/pod1/c1": "max 100000"})
    assert read_quota(root, tmp_path / "self-cgroup") is None
    assert CpuBudget(1, 2, None).describe() == "affinity 1 of 2 CPUs, no quota"
    assert CpuBudget(1, 2, None).threads == 1


def test_a_container_in_its_own_cgroup_namespace_reads_the_root(tmp_path: Path) -> None:
    # /proc/self/cgroup says "/" (a cgroup namespace) or a host path its mount lacks.
    root = _v2(tmp_path, {"/": "200000 100000"}, path="/")
    assert read_quota(root, tmp_path / "self-cgroup") == Quota(2.0, root / "cpu.max")
    (tmp_path / "self-cgroup").write_text("0::/kubepods/burstable/pod9/abc\n")
    assert read_quota(root, tmp_path / "self-cgroup") == Quota(2.0, root / "cpu.max")


def test_a_v1_cpu_controller_quota(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    mine = root / "cpu,cpuacct" / "kubepods" / "pod1"
    mine.mkdir(parents=True)
    (mine / "cpu.cfs_quota_us").write_text("150000\n")
    (mine / "cpu.cfs_period_us").write_text("100000\n")
    (root / "cpu,cpuacct" / "cpu.cfs_quota_us").write_text("-1\n")
    (root / "cpu,cpuacct" / "cpu.cfs_period_us").write_text("100000\n")
    (tmp_path / "self-cgroup").write_text(
        "4:memory:/kubepods/pod1\n3:cpu,cpuacct:/kubepods/pod1\n0::/\n"
    )
    quota = read_quota(root, tmp_path / "self-cgroup")
    assert quota == Quota(1.5, mine / "cpu.cfs_quota_us")
    assert CpuBudget(4, 4, quota).threads == 2


@pytest.mark.parametrize("text", ["", "garbage", "100000", "x 100000", "0 100000"])
def test_an_unreadable_cpu_max_is_no_quota(tmp_path: Path, text: str) -> None:
    root = _v2(tmp_path, {"/kubepods/pod1/c1": text})
    assert read_quota(root, tmp_path / "self-cgroup") is None


def test_this_machine_budget_is_its_affinity_and_its_own_quota_files() -> None:
    here = budget()
    assert here.affinity == len(os.sched_getaffinity(0)) and here.online == os.cpu_count()
    if here.quota is None:
        assert here.threads == here.affinity and here.describe().endswith("no quota")
    else:
        # What it found is a real file of this machine's cgroups, holding that quota.
        text = here.quota.source.read_text().split()
        assert here.quota.source.is_relative_to("/sys/fs/cgroup") and int(text[0]) > 0
        assert here.threads <= here.affinity
