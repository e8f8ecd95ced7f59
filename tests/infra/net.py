"""Loopback ports for the local servers."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now. The server binds it a moment later; another
    process could take it in between, which on a test machine is rare enough."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
