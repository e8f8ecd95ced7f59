"""The local servers as supervised child processes: each one a `Component` (its command,
its readiness check, its stop), one `Supervisor` that starts them in order, waits for
each to be ready, checks that they stay alive and stops them in reverse order.

Every component runs in a session of its own (`make cluster-up` returns while they
keep running, and a signal to the group reaches a component's children too), its
output appended to `<logs>/<name>.log`, its pid written to `<pids>/<name>` so that
another process (`python -m devcluster.controlplane down`) can stop it. Unless they
are to outlive the caller, each gets a signal when the process that started it dies
(devcluster/host.py, `die_with_parent`).

Followed: systemd's unit model for the split (ExecStart, a readiness notion, KillSignal
and TimeoutStopSec, stop in reverse dependency order), not its code.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from devcluster.host import die_with_parent


@dataclass(frozen=True)
class Command:
    """What to run: the argv, and the environment (None: this process's)."""

    argv: tuple[str, ...]
    env: Mapping[str, str] | None = None

    @classmethod
    def of(cls, argv: Iterable[str | Path], env: Mapping[str, str] | None = None) -> Command:
        return cls(tuple(str(a) for a in argv), env)


@dataclass(frozen=True)
class Readiness:
    """How to know a started component serves: `probe` answers once, True when ready
    (None: running is ready); polled every 0.2 s for `timeout` seconds. `where` names
    what is probed, for the message of a timeout."""

    probe: Callable[[], bool] | None = None
    where: str = ""
    timeout: float = 60


@dataclass(frozen=True)
class Stop:
    """How a component is stopped: `signal` to its process group, SIGKILL after `grace`
    seconds. `on_parent_death`: the signal it gets when its starter dies (SIGKILL for a
    throwaway server; the executor wants SIGTERM, which ends its pods' processes)."""

    signal: signal.Signals = signal.SIGTERM
    grace: float = 10
    on_parent_death: str = "KILL"


@dataclass(frozen=True)
class Component:
    name: str
    command: Command
    ready: Readiness = Readiness()
    stop: Stop = Stop()


@dataclass
class Supervisor:
    """The running components of one place: `logs/<name>.log`, `pids/<name>` (None: no
    pid files), started in `cwd` (None: this process's)."""

    logs: Path
    pids: Path | None = None
    cwd: Path | None = None
    # False: the components end when the process that started them dies (tests).
    # True: they run on until stopped by pid (make cluster-up / cluster-down).
    outlive_caller: bool = False
    _known: dict[str, Component] = field(default_factory=dict)
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, *components: Component) -> None:
        """Start each in order, then wait for each one's readiness in order (a group's
        members start together: the controller manager and the scheduler need only the
        API server). A component that exits meanwhile raises with its log's tail."""
        for component in components:
            self._spawn(component)
        for component in components:
            self.wait_ready(component.name)

    def wait_ready(self, name: str) -> None:
        ready = self._known[name].ready
        if ready.probe is None:
            return
        deadline = time.monotonic() + ready.timeout
        while True:
            self.check_alive()
            if ready.probe():
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} not ready at {ready.where} after {ready.timeout}s")
            time.sleep(0.2)

    def check_alive(self) -> None:
        """Raise if a component has exited, with the tail of its log."""
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                tail = self.log(name).read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def running(self) -> list[str]:
        """The names of the components started and not stopped, in start order."""
        return list(self._procs)

    def pid(self, name: str) -> int:
        return self._procs[name].pid

    def stop(self, name: str, *, kill: bool = False) -> None:
        """Stop one component (its stop signal, SIGKILL after the grace period; at once
        with `kill`: a crash). It may be started again: `restart`, or `start` with it."""
        proc = self._procs.pop(name, None)
        if proc is not None:
            _terminate(proc, self._known[name].stop, kill=kill)
        if self.pids is not None:
            (self.pids / name).unlink(missing_ok=True)

    def restart(self, name: str, down_seconds: float = 0.0) -> None:
        """Stop one component, keep it down `down_seconds`, start it again with the same
        command (same port, same data); returns once it is ready again."""
        self.stop(name)
        time.sleep(down_seconds)
        self.start(self._known[name])

    def stop_all(self) -> None:
        """Every running component, in the reverse of their start order."""
        for name in reversed(self.running()):
            self.stop(name)

    def release(self) -> None:
        """Forget the running components without stopping them: they outlive this
        process, and `stop_recorded` ends them by their pid files."""
        self._procs.clear()

    def _spawn(self, component: Component) -> None:
        self._known[component.name] = component
        self.logs.mkdir(parents=True, exist_ok=True)
        argv = list(component.command.argv)
        if not self.outlive_caller:
            argv = die_with_parent(argv, component.stop.on_parent_death)
        env = component.command.env
        with self.log(component.name).open("ab") as log:
            proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.cwd,
                env=dict(env) if env is not None else None,
            )
        self._procs[component.name] = proc
        if self.pids is not None:
            self.pids.mkdir(parents=True, exist_ok=True)
            (self.pids / component.name).write_text(str(proc.pid))


def _terminate(proc: subprocess.Popen[bytes], stop: Stop, *, kill: bool) -> None:
    if proc.poll() is not None:
        return
    if not kill:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, stop.signal)
        try:
            proc.wait(timeout=stop.grace)
            return
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


# ---- components started by another process (make cluster-up, then cluster-down) --------
def recorded(pids: Path, names: Sequence[str]) -> dict[str, int]:
    """The pids written under `pids` for `names`, in that order."""
    found = {}
    for name in names:
        file = pids / name
        if file.exists():
            found[name] = int(file.read_text())
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is not alive; /proc says so where kill(0) cannot.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[-1].split()[0] == "Z")


def stop_recorded(pids: Mapping[str, int], grace: float = 10) -> Iterable[tuple[str, int]]:
    """Stop each recorded component still alive, in reverse order (SIGTERM to its group,
    SIGKILL after `grace`); yields (name, pid) of each one stopped."""
    for name, pid in reversed(list(pids.items())):
        if not alive(pid):
            continue
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        yield name, pid
