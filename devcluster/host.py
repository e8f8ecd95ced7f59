"""This machine's side of the local servers: loopback ports and child processes."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Sequence


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now. The server binds it a moment later; another
    process could take it in between, which on a test machine is rare enough."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def die_with_parent(argv: Sequence[str], signal: str = "KILL") -> list[str]:
    """`argv`, made to receive `signal` (SIGKILL by default) when the process that
    starts it dies.

    Servers run in sessions of their own (so a terminal's Ctrl-C or a signal to
    pytest's group does not reach them half-way); should pytest itself be
    killed, this still ends them instead of leaving them running on the machine.
    util-linux's `setpriv --pdeathsig` sets the flag and execs the command, which
    keeps the same pid. SIGKILL, because a graceful stop is worth nothing to a
    throwaway server whose caller is gone, and some never finish one (an API server
    whose etcd stopped at the same moment waits for it for ever)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return list(argv)
    return [setpriv, "--pdeathsig", signal, "--", *argv]
