"""The supervisor of the local servers (devcluster/supervisor.py), on small Python
processes instead of the cluster's binaries: start order, readiness, a component that
dies, stop in reverse, restart with the same command, a kill."""

from __future__ import annotations

import sys
from pathlib import Path

import psutil
import pytest

from devcluster.supervisor import Command, Component, Readiness, Supervisor

# Says it is ready by writing a file; on SIGTERM writes its name to the stop log.
SERVER = """
import signal, sys, time
name, ready, stops = sys.argv[1:4]
def leave(*_):
    with open(stops, "a") as out:
        out.write(name + "\\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, leave)
print(name, "started", flush=True)
open(ready, "w").close()
time.sleep(120)
"""


def server(tmp_path: Path, name: str) -> Component:
    ready = tmp_path / f"{name}.ready"
    argv = [sys.executable, "-c", SERVER, name, str(ready), str(tmp_path / "stops")]
    return Component(name, Command.of(argv), Readiness(ready.exists, str(ready), timeout=20))


def test_started_in_order_ready_and_stopped_in_reverse(tmp_path: Path) -> None:
    supervisor = Supervisor(logs=tmp_path / "logs", pids=tmp_path / "pids")
    try:
        supervisor.start(server(tmp_path, "first"))
        supervisor.start(server(tmp_path, "second"), server(tmp_path, "third"))
        assert supervisor.running() == ["first", "second", "third"]
        # start() returns once each is ready, and the pid files name the processes.
        assert all((tmp_path / f"{n}.ready").exists() for n in supervisor.running())
        for name in supervisor.running():
            pid = int((tmp_path / "pids" / name).read_text())
            assert pid == supervisor.pid(name) and psutil.pid_exists(pid)
        supervisor.check_alive()
    finally:
        supervisor.stop_all()
    assert (tmp_path / "stops").read_text().split() == ["third", "second", "first"]
    assert supervisor.running() == [] and not list((tmp_path / "pids").iterdir())
    assert "first started" in supervisor.log("first").read_text()


def test_a_component_that_exits_raises_with_its_log(tmp_path: Path) -> None:
    supervisor = Supervisor(logs=tmp_path)
    argv = [sys.executable, "-c", "print('no such flag: --x'); raise SystemExit(3)"]
    dying = Component("dying", Command.of(argv), Readiness(lambda: False, "nowhere"))
    try:
        with pytest.raises(RuntimeError, match=r"dying exited with 3:\n.*no such flag: --x"):
            supervisor.start(dying)
    finally:
        supervisor.stop_all()


def test_not_ready_in_time_says_where_it_looked(tmp_path: Path) -> None:
    supervisor = Supervisor(logs=tmp_path)
    argv = [sys.executable, "-c", "import time; time.sleep(60)"]
    slow = Component("slow", Command.of(argv), Readiness(lambda: False, "http://x/ready", 0.5))
    try:
        with pytest.raises(TimeoutError, match=r"slow not ready at http://x/ready after 0.5s"):
            supervisor.start(slow)
    finally:
        supervisor.stop_all()


def test_restart_runs_the_same_command_again_and_kill_skips_the_grace(tmp_path: Path) -> None:
    supervisor = Supervisor(logs=tmp_path / "logs")
    component = server(tmp_path, "only")
    try:
        supervisor.start(component)
        before = supervisor.pid("only")
        (tmp_path / "only.ready").unlink()
        supervisor.restart("only")
        assert supervisor.pid("only") != before and (tmp_path / "only.ready").exists()
        assert (tmp_path / "stops").read_text().split() == ["only"]  # SIGTERM, then again
        supervisor.stop("only", kill=True)
        assert (tmp_path / "stops").read_text().split() == ["only"]  # SIGKILL: no handler ran
        (tmp_path / "only.ready").unlink()
        supervisor.start(component)  # a stopped component may be started again
        assert supervisor.running() == ["only"]
    finally:
        supervisor.stop_all()
    assert supervisor.log("only").read_text().count("only started") == 3
