"""Servers started for tests end when the test process dies, even by SIGKILL."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import psutil

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]

PARENT = f"""
import subprocess, sys, time
from devcluster.host import die_with_parent
child = subprocess.Popen(die_with_parent({SLEEPER!r}), start_new_session=True)
print(child.pid, flush=True)
time.sleep(120)
"""


def test_children_end_when_their_parent_is_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = psutil.Process(int(parent.stdout.readline()))
    try:
        assert child.is_running()
        # setpriv sets the death signal and then execs: kill the parent only after
        # the exec, or (on a loaded machine) it may die before the flag is set.
        # Wait for the command's exact argv: a cmdline read while the exec is under
        # way is empty, and setpriv's own argv holds the command's words too (waiting
        # for "time.sleep(120)" in it let the kill come before the prctl: the 30 s
        # failure of the fresh-clone runs of 2026-12-06).
        deadline = time.monotonic() + 10
        while child.cmdline() != SLEEPER:
            assert time.monotonic() < deadline, "setpriv never exec'd the child"
            time.sleep(0.05)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        # 30 s: on a machine loaded by a soak beside the suite the death signal's delivery
        # and the reaping took over 10 s (the fresh-clone run of 2026-12-06).
        deadline = time.monotonic() + 30
        while child.is_running() and child.status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, (
                f"the child outlived its parent: {child.status()} {child.cmdline()}"
            )
            time.sleep(0.1)
    finally:
        if child.is_running():
            child.kill()
