"""`bodypose-operator` as its own process against the local cluster (e2e tests, `make demo`).

Runs the installed console script from this virtualenv with a short resync and
liveness and metrics on free loopback ports: for tests that kill and restart
the operator as a process. Its Jobs still run from their images (the chart's
default image names, as `make images` tags them); `make demo` and
tests/e2e/test_operator_in_cluster.py run the operator itself from its image.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from devcluster.host import free_port


@dataclass
class OperatorProcess:
    proc: subprocess.Popen[bytes]
    log: Path
    metrics_port: int
    liveness_port: int

    def stop(self, kill: bool = False) -> None:
        """SIGTERM (SIGKILL with `kill`: what an OOM kill or a node failure does)."""
        if self.proc.poll() is not None:
            return
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_operator(
    kubeconfig: Path,
    log: Path,
    extra_env: dict[str, str] | None = None,
    namespaces: tuple[str, ...] = (),
) -> OperatorProcess:
    """`namespaces`: watch only these (`--namespace`), as the chart's watchNamespaces does;
    empty: the whole cluster. The operator gets no AWS_* of this process (a test's may
    hold MinIO's root account): it reaches S3 only with each resource's own Secret, as
    in the chart; `extra_env` may still set some, for the ambient-credentials mode."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        **(extra_env or {}),
        "KUBECONFIG": str(kubeconfig),
    }
    metrics_port, liveness_port = free_port(), free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "bodypose-operator"),
             f"--liveness=http://127.0.0.1:{liveness_port}/healthz",
             f"--metrics-port={metrics_port}",
             *(f"--namespace={ns}" for ns in namespaces)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return OperatorProcess(proc, log, metrics_port, liveness_port)
