"""A real Kubernetes control plane on loopback, without Docker.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler built from
their Go modules (`hack/cluster/build.sh`), kwok for fake nodes, all as child
processes bound to 127.0.0.1 on free ports, with locally generated
certificates, RBAC, the admission plugins of a real cluster (PodSecurity
included) and service-account tokens.

    python -m tests.infra.controlplane up [--state-dir .cluster]   # for people
    python -m tests.infra.controlplane down [--state-dir .cluster]

Followed: the kube-apiserver, kube-controller-manager and kube-scheduler flag
references (kubernetes.io/docs/reference/command-line-tools-reference/) and
kwok's docs on running `kwok` against an existing cluster (kwok.sigs.k8s.io).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.infra.pki import make_pki

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "hack" / "cluster" / "build.sh"
KWOK_STAGES = REPO / "hack" / "cluster" / "kwok-stages.yaml"
ADMISSION_PLUGINS = ",".join(
    [
        "NamespaceLifecycle",
        "LimitRanger",
        "ServiceAccount",
        "DefaultTolerationSeconds",
        "PodSecurity",
        "Priority",
        "MutatingAdmissionWebhook",
        "ValidatingAdmissionWebhook",
        "ValidatingAdmissionPolicy",
        "ResourceQuota",
    ]
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def binaries() -> dict[str, Path]:
    """Paths of the built binaries, building what is missing (slow only the first time)."""
    out = subprocess.run(
        [str(BUILD_SCRIPT)], check=True, stdout=subprocess.PIPE, text=True
    ).stdout.split()
    found: dict[str, Path] = {}
    for directory in map(Path, out):
        for exe in directory.iterdir():
            found[exe.name] = exe
    return found


def write_kubeconfig(path: Path, server: str, ca: Path, auth: dict[str, str], user: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "local", "cluster": {"server": server, "certificate-authority": str(ca)}}
        ],
        "users": [{"name": user, "user": auth}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": user}}],
        "current-context": "local",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


@dataclass
class LocalCluster:
    state_dir: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    server: str = ""
    kubeconfig: Path = Path()
    bins: dict[str, Path] = field(default_factory=dict)

    @property
    def pki(self) -> Path:
        return self.state_dir / "pki"

    def _spawn(self, name: str, args: list[str]) -> None:
        log = (self.state_dir / "logs" / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        (self.state_dir / "pids").mkdir(exist_ok=True)
        (self.state_dir / "pids" / name).write_text(str(self.procs[name].pid))

    def _wait_http(
        self, url: str, what: str, timeout: float = 60, tls: bool = False, self_signed: bool = False
    ) -> None:
        ctx = None
        if self_signed:
            # Controller manager and scheduler serve /healthz with a certificate they
            # made themselves; only liveness is checked here, on loopback.
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif tls:
            ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
            ctx.load_cert_chain(self.pki / "admin.crt", self.pki / "admin.key")
        deadline = time.monotonic() + timeout
        while True:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    tail = (self.state_dir / "logs" / f"{name}.log").read_text()[-3000:]
                    raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(url, context=ctx, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} not ready at {url} after {timeout}s")
            time.sleep(0.3)

    def start(self) -> LocalCluster:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "logs").mkdir(exist_ok=True)
        self.bins = binaries()
        pki = make_pki(self.pki)
        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        self._spawn("etcd", [
            str(self.bins["etcd"]), "--name", "local",
            "--data-dir", str(self.state_dir / "etcd"),
            "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
            "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-cluster", f"local=http://127.0.0.1:{peer_port}",
            "--listen-metrics-urls", f"http://127.0.0.1:{free_port()}",
            "--unsafe-no-fsync", "--log-level", "warn",
        ])  # fmt: skip
        self._wait_http(f"{etcd_url}/health", "etcd")
        self.server = f"https://127.0.0.1:{api_port}"
        self._spawn("kube-apiserver", [
            str(self.bins["kube-apiserver"]),
            "--etcd-servers", etcd_url,
            "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
            "--secure-port", str(api_port),
            "--tls-cert-file", str(pki["apiserver.crt"]),
            "--tls-private-key-file", str(pki["apiserver.key"]),
            "--client-ca-file", str(pki["ca.crt"]),
            "--authorization-mode", "RBAC",
            "--enable-admission-plugins", ADMISSION_PLUGINS,
            "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file", str(pki["sa.pub"]),
            "--service-account-signing-key-file", str(pki["sa.key"]),
            "--service-cluster-ip-range", "10.96.0.0/16",
            "--endpoint-reconciler-type", "none",
            "--allow-privileged=true",
            "--profiling=false",
            "--cert-dir", str(self.state_dir / "apiserver-certs"),
        ])  # fmt: skip
        self._wait_http(f"{self.server}/readyz", "kube-apiserver", timeout=90, tls=True)
        self.kubeconfig = write_kubeconfig(
            self.state_dir / "admin.kubeconfig",
            self.server,
            pki["ca.crt"],
            {"client-certificate": str(pki["admin.crt"]), "client-key": str(pki["admin.key"])},
            "admin",
        )
        kcm_port, sched_port = free_port(), free_port()
        self._spawn("kube-controller-manager", [
            str(self.bins["kube-controller-manager"]),
            "--kubeconfig", str(self.kubeconfig),
            "--authentication-kubeconfig", str(self.kubeconfig),
            "--authorization-kubeconfig", str(self.kubeconfig),
            "--bind-address", "127.0.0.1", "--secure-port", str(kcm_port),
            "--leader-elect=false",
            "--service-account-private-key-file", str(pki["sa.key"]),
            "--root-ca-file", str(pki["ca.crt"]),
            # No node IPAM (no pod network); node lifecycle stays: it lifts the
            # not-ready taint once kwok reports the fake nodes Ready.
            "--controllers",
            "*,-node-ipam-controller",
        ])  # fmt: skip
        self._spawn("kube-scheduler", [
            str(self.bins["kube-scheduler"]),
            "--kubeconfig", str(self.kubeconfig),
            "--authentication-kubeconfig", str(self.kubeconfig),
            "--authorization-kubeconfig", str(self.kubeconfig),
            "--bind-address", "127.0.0.1", "--secure-port", str(sched_port),
            "--leader-elect=false",
        ])  # fmt: skip
        self._spawn("kwok", [
            str(self.bins["kwok"]),
            "--kubeconfig", str(self.kubeconfig),
            "--config", str(KWOK_STAGES),
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector", "kwok.x-k8s.io/node=fake",
            "--server-address", f"127.0.0.1:{free_port()}",
            "--node-lease-duration-seconds", "40",
        ])  # fmt: skip
        self._wait_http(f"https://127.0.0.1:{kcm_port}/healthz", "kube-controller-manager",
                        self_signed=True)  # fmt: skip
        self._wait_http(
            f"https://127.0.0.1:{sched_port}/healthz", "kube-scheduler", self_signed=True
        )
        (self.state_dir / "cluster.json").write_text(
            json.dumps({"server": self.server, "kubeconfig": str(self.kubeconfig)})
        )
        return self

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()

    def api_client(self, kubeconfig: Path | None = None) -> Any:
        from kubernetes import config

        return config.new_client_from_config(str(kubeconfig or self.kubeconfig))

    def kubeconfig_for_service_account(self, namespace: str, name: str) -> Path:
        """A kubeconfig authenticating as the service account, via a TokenRequest."""
        from kubernetes import client

        core = client.CoreV1Api(self.api_client())
        token = core.create_namespaced_service_account_token(
            name, namespace, {"spec": {"expirationSeconds": 3600}}
        ).status.token
        path = self.state_dir / f"sa-{namespace}-{name}.kubeconfig"
        return write_kubeconfig(path, self.server, self.pki / "ca.crt", {"token": token},
                                f"{namespace}:{name}")  # fmt: skip


def _stop_from_pids(state_dir: Path) -> None:
    for pid_file in sorted((state_dir / "pids").glob("*")):
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.killpg(int(pid_file.read_text()), signal.SIGTERM)
        pid_file.unlink()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.infra.controlplane")
    p.add_argument("action", choices=["up", "down"])
    p.add_argument("--state-dir", default=".cluster")
    args = p.parse_args(argv)
    state = Path(args.state_dir).resolve()
    if args.action == "down":
        if (state / "pids").exists():
            _stop_from_pids(state)
        shutil.rmtree(state, ignore_errors=True)
        print(f"stopped and removed {state}")
        return 0
    from tests.infra.nodes import create_pools

    start = time.monotonic()
    cluster = LocalCluster(state).start()
    create_pools(cluster.api_client())
    print(f"control plane up in {time.monotonic() - start:.1f}s")
    print(f"export KUBECONFIG={cluster.kubeconfig}")
    # Children run in their own sessions: they outlive this command until `down`.
    cluster.procs.clear()
    return 0


if __name__ == "__main__":
    sys.exit(main())
