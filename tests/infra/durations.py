"""Where the suite's time goes: the slowest tests and the time per folder, printed at the
end of every run (issue 32: the same suite took twice as long on one machine of this kind
as on another, and no figure said which tests take the time).

pytest's own `--durations=N` lists phases (setup, call, teardown) one per line and does
not group them; here each test's phases are summed and the sums grouped by the folder
under `tests/`. A session fixture's set-up (the local cluster, the images, an export
shared by a folder) is counted in the set-up of the first test that asks for it, so a
folder's figure includes what it alone needed started. The figures are measured, never
asserted: the machines are shared and noisy (README, "Benchmarks").

Beside the wall time, each test's CPU time: this process's and that of the child
processes it waited for (`os.times`: a pod's process, an export, a build; the session's
servers - MinIO, the control plane - are counted when they stop, at the end). The
suite's CPU against what the cores could have given says how much running tests side by
side could win: a suite busy on every core for its whole wall time gains nothing from it.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Generator

import pytest

#: How many of the slowest tests the summary lists.
SLOWEST = 25

_per_test: dict[str, float] = defaultdict(float)
_cpu_per_test: dict[str, float] = defaultdict(float)
_started = time.monotonic()


def cpu_seconds() -> float:
    """This process's CPU time and its waited-for children's, so far."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


_cpu_started = cpu_seconds()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, None]:
    before = cpu_seconds()
    yield
    _cpu_per_test[item.nodeid] += cpu_seconds() - before


#: The CPU of the last test's tear-down, which stops the session's servers: the local
#: cluster's executor is reaped there with every pod it ran, so this is most of the e2e
#: pods' CPU (exports, builds), not the last test's.
SESSION_END = "(the session's end: its servers, the cluster's executor and every pod it ran)"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, None, None]:
    if nextitem is not None:
        yield
        return
    before = cpu_seconds()
    yield
    spent = cpu_seconds() - before
    _cpu_per_test[item.nodeid] -= spent
    _cpu_per_test[SESSION_END] += spent


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _per_test[report.nodeid] += report.duration


def folder_of(nodeid: str) -> str:
    """`tests/e2e/test_faults.py::test_x` -> `tests/e2e`; a top-level module is its own."""
    path = nodeid.split("::", 1)[0]
    parts = path.split("/")
    return "/".join(parts[:2]) if len(parts) > 2 else path


def summary_lines(
    per_test: dict[str, float],
    wall: float,
    cpu_per_test: dict[str, float] | None = None,
    cpu: float | None = None,
    cores: int | None = None,
) -> list[str]:
    cpu_of = cpu_per_test or {}
    folders: dict[str, list[str]] = defaultdict(list)
    for nodeid in per_test:
        folders[folder_of(nodeid)].append(nodeid)
    total = sum(per_test.values()) or 1.0
    lines = [
        f"wall clock {wall / 60:.1f} min, in tests (set-up, call, tear-down) {total / 60:.1f} min"
    ]
    if cpu is not None and cores:
        lines.append(
            f"CPU {cpu / 60:.1f} min (this process and the children it waited for) of the "
            f"{wall * cores / 60:.1f} min {cores} cores could give in that wall time: "
            f"{cpu / (wall * cores):.0%} busy"
        )
    if cpu_of.get(SESSION_END):
        lines.append(f"{SESSION_END}: {cpu_of[SESSION_END]:.1f} cpu-s")
    lines.append(f"{'folder':<40} {'tests':>6} {'seconds':>9} {'share':>6} {'cpu-s':>8}")
    for folder, ids in sorted(folders.items(), key=lambda item: -_sum(per_test, item[1])):
        spent, burnt = _sum(per_test, ids), _sum(cpu_of, ids)
        lines.append(
            f"{folder:<40} {len(ids):>6} {spent:>9.1f} {spent / total:>6.1%} {burnt:>8.1f}"
        )
    lines.append(f"slowest {SLOWEST} tests (set-up + call + tear-down; CPU):")
    slowest = sorted(per_test.items(), key=lambda item: -item[1])[:SLOWEST]
    lines.extend(
        f"{seconds:>8.1f} s  {cpu_of.get(nodeid, 0.0):>7.1f} cpu-s  {nodeid}"
        for nodeid, seconds in slowest
    )
    return lines


def _sum(figures: dict[str, float], ids: list[str]) -> float:
    return sum(figures.get(i, 0.0) for i in ids)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _per_test:
        return
    terminalreporter.section("where the time went")
    wall, cpu = time.monotonic() - _started, cpu_seconds() - _cpu_started
    for line in summary_lines(dict(_per_test), wall, dict(_cpu_per_test), cpu, os.cpu_count()):
        terminalreporter.write_line(line)
