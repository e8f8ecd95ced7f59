"""A loopback TCP proxy in front of an S3 server that stops at one chosen request.

Why: the fault suite must kill S3 *during* an upload. Watching the bucket for the
first artifact and then killing MinIO races with the upload itself (a CI run saw
the whole publish, manifest included, land between two polls). The gate makes
the moment certain: the first request whose request line matches `pattern` is
held, unsent, until the test has killed the server and calls `release()`; the
held connection is then cut without a response, as a crash cuts it. Every other
byte passes through untouched, Host header included, so SigV4 signatures made
for the gate's address still verify at the server behind it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import socket
import threading
from urllib.parse import urlsplit

from devcluster.minio import S3Server

# A request line is far shorter than this; the tail kept between reads lets a line
# split across two reads still match.
_TAIL = 4096


class S3Gate:
    """`server` is the upstream S3Server with the gate's URL; `held` is set once a
    matching request is being held; `refused` once a client's connection found the
    server down (what a test waits on to know S3's outage was met, not merely timed)."""

    def __init__(self, upstream: S3Server, pattern: bytes) -> None:
        parts = urlsplit(upstream.url)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._pattern = re.compile(pattern)
        self._listener = socket.create_server(("127.0.0.1", 0))
        port = self._listener.getsockname()[1]
        self.server = dataclasses.replace(upstream, url=f"http://127.0.0.1:{port}")
        self.held = threading.Event()
        self.refused = threading.Event()
        self._released = threading.Event()
        self._lock = threading.RLock()
        self._sockets: set[socket.socket] = set()
        self._closed = False
        threading.Thread(target=self._accept, name="s3-gate", daemon=True).start()

    def release(self) -> None:
        """Cut the held connection (its request never reaches the server)."""
        self._released.set()

    def close(self) -> None:
        self._closed = True
        self._released.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            for sock in list(self._sockets):
                self._shut(sock)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self._upstream, timeout=5)
            upstream.settimeout(None)
        except OSError:
            # The server is down: the client sees its connection closed, as it would
            # see it refused.
            self.refused.set()
            self._shut(client)
            return
        with self._lock:
            self._sockets.update((client, upstream))
        threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()
        self._pump(client, upstream, True)

    def _pump(self, source: socket.socket, sink: socket.socket, watch: bool) -> None:
        tail = b""
        try:
            while chunk := source.recv(65536):
                if watch and not self.held.is_set():
                    if self._pattern.search(tail + chunk):
                        self.held.set()
                        self._released.wait()
                        return  # the finally cuts both sides; the chunk is never sent
                    tail = (tail + chunk)[-_TAIL:]
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            self._shut(source)
            self._shut(sink)

    def _shut(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()
        with self._lock:
            self._sockets.discard(sock)
