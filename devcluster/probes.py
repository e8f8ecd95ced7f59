"""Readiness probes of the local servers: one HTTP GET that answers 200."""

from __future__ import annotations

import contextlib
import ssl
import urllib.request
from collections.abc import Callable
from pathlib import Path


def client_tls(ca: Path, cert: Path, key: Path) -> ssl.SSLContext:
    """TLS that checks the server against our CA and shows a client certificate."""
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.load_cert_chain(cert, key)
    return ctx


def unverified_tls() -> ssl.SSLContext:
    """The controller manager and the scheduler serve /healthz with a certificate they
    made themselves: only liveness is asked, on loopback."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def http_ok(url: str, tls: ssl.SSLContext | None = None) -> Callable[[], bool]:
    """A probe: True when `url` answers 200 (TLS with `tls` for https)."""

    def probe() -> bool:
        with contextlib.suppress(OSError):
            context = tls if url.startswith("https") else None
            with urllib.request.urlopen(url, context=context, timeout=2) as resp:
                return bool(resp.status == 200)
        return False

    return probe
