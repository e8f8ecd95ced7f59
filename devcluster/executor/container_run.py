"""One container's process: started in its own mount and PID namespaces through
devcluster/container_init.py, waited for (its exit code and CPU time), killed (SIGTERM,
SIGKILL after the grace period), its termination message read as the kubelet reads it."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INIT = Path(__file__).resolve().parents[1] / "container_init.py"
# The kubelet's limits for a termination message and for the log fallback.
MAX_MESSAGE_BYTES = 4096
FALLBACK_LINES = 80
FALLBACK_BYTES = 2048


@dataclass
class PodRun:
    """One pod this executor owns: its directories and its running process."""

    pod: Any
    work: Path
    logs: Path
    bound_at: float = field(default_factory=time.monotonic)
    deleted: threading.Event = field(default_factory=threading.Event)
    proc: subprocess.Popen[bytes] | None = None
    grace_seconds: int = 30
    cpu_seconds: float = 0.0  # of the last container run, user + system


def start(spec_file: Path, output: Path) -> subprocess.Popen[bytes]:
    """container_init.py on `spec_file` in new mount and PID namespaces, in a session
    of its own (a signal to the group reaches every process of the container); its
    output appended to `output`."""
    with output.open("ab") as out:
        return subprocess.Popen(
            ["unshare", "--mount", "--pid", "--fork", "--propagation", "private", "--",
             sys.executable, str(INIT), str(spec_file)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip


def read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except FileNotFoundError:
        return ""


def wait(run: PodRun, proc: subprocess.Popen[bytes], deadline: dt.datetime | None) -> int | None:
    """The exit code (128+N for signal N, as container runtimes report it), or
    None if the pod was deleted or its activeDeadlineSeconds passed first."""
    while True:
        # wait4, not Popen.wait: its rusage is the container's CPU time, every process
        # of it included (each reaped its children, so their times are summed in).
        try:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        except ChildProcessError:  # reaped by _kill on another thread: deleted or timed out
            if run.deleted.is_set() or proc.returncode is None:
                return None
            return 128 - proc.returncode if proc.returncode < 0 else proc.returncode
        if pid:
            code = os.waitstatus_to_exitcode(status)
            proc.returncode = code
            run.cpu_seconds = usage.ru_utime + usage.ru_stime
            return 128 - code if code < 0 else code
        time.sleep(0.5)
        if run.deleted.is_set():
            return None
        if deadline and dt.datetime.now(dt.UTC) >= deadline:
            kill(run, grace=run.grace_seconds)
            return None


def kill(run: PodRun, grace: int) -> None:
    """SIGTERM the container's process group, SIGKILL after the grace period."""
    proc = run.proc
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=max(grace, 0.1))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def message(message_file: Path, output: Path, code: int, policy: str | None) -> str:
    data = message_file.read_bytes()[:MAX_MESSAGE_BYTES] if message_file.exists() else b""
    if not data and code != 0 and policy == "FallbackToLogsOnError":
        lines = output.read_bytes().splitlines(keepends=True)[-FALLBACK_LINES:]
        data = b"".join(lines)[-FALLBACK_BYTES:]
    return data.decode(errors="replace")
