"""Where the suite's time goes: the slowest tests and the time per folder, printed at the
end of every run (issue 32: the same suite took twice as long on one machine of this kind
as on another, and no figure said which tests take the time).

pytest's own `--durations=N` lists phases (setup, call, teardown) one per line and does
not group them; here each test's phases are summed and the sums grouped by the folder
under `tests/`. A session fixture's set-up (the local cluster, the images, an export
shared by a folder) is counted in the set-up of the first test that asks for it, so a
folder's figure includes what it alone needed started. The figures are measured, never
asserted: the machines are shared and noisy (README, "Benchmarks").
"""

from __future__ import annotations

import time
from collections import defaultdict

import pytest

#: How many of the slowest tests the summary lists.
SLOWEST = 25

_per_test: dict[str, float] = defaultdict(float)
_started = time.monotonic()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _per_test[report.nodeid] += report.duration


def folder_of(nodeid: str) -> str:
    """`tests/e2e/test_faults.py::test_x` -> `tests/e2e`; a top-level module is its own."""
    path = nodeid.split("::", 1)[0]
    parts = path.split("/")
    return "/".join(parts[:2]) if len(parts) > 2 else path


def summary_lines(per_test: dict[str, float], wall: float) -> list[str]:
    folders: dict[str, list[float]] = defaultdict(list)
    for nodeid, seconds in per_test.items():
        folders[folder_of(nodeid)].append(seconds)
    total = sum(per_test.values()) or 1.0
    lines = [
        f"wall clock {wall / 60:.1f} min, in tests (set-up, call, tear-down) {total / 60:.1f} min"
    ]
    lines.append(f"{'folder':<40} {'tests':>6} {'seconds':>9} {'share':>6}")
    for folder, times in sorted(folders.items(), key=lambda item: -sum(item[1])):
        spent = sum(times)
        lines.append(f"{folder:<40} {len(times):>6} {spent:>9.1f} {spent / total:>6.1%}")
    lines.append(f"slowest {SLOWEST} tests (set-up + call + tear-down):")
    slowest = sorted(per_test.items(), key=lambda item: -item[1])[:SLOWEST]
    lines.extend(f"{seconds:>8.1f} s  {nodeid}" for nodeid, seconds in slowest)
    return lines


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _per_test:
        return
    terminalreporter.section("where the time went")
    for line in summary_lines(dict(_per_test), time.monotonic() - _started):
        terminalreporter.write_line(line)
