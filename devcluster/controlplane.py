"""A real Kubernetes control plane on loopback, without Docker.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler built from
their Go modules (`hack/cluster/build.sh`), kwok playing the kubelet of fake
GPU and CPU nodes (`devcluster/nodes.py`), and the executor that runs every
bound pod inside its image (`devcluster/executor/`; images are loaded with
`load_image`, devcluster/image_store.py). All are child
processes bound to 127.0.0.1 on free ports, configured as kubeadm configures a
single control-plane node, less what needs real kubelets:

- certificates made locally (`devcluster/pki.py`); every component
  authenticates with its own client certificate, and the controller manager
  runs each controller under its own service account
  (`--use-service-account-credentials`), so RBAC is what a real cluster enforces;
- `--authorization-mode=Node,RBAC`, the admission plugins of a real cluster
  (PodSecurity included: namespaces opt in with `pod-security.kubernetes.io/*`
  labels), service-account tokens signed with our key (TokenRequest);
- an admin kubeconfig with the credentials embedded, and
  `kubeconfig_for_service_account()` for acting as a given service account;
- kwok in its controller mode against this API server (not kwokctl), managing
  nodes annotated `kwok.x-k8s.io/node=fake`, with the Stages of
  `hack/cluster/kwok-stages.yaml` (plus kwok-pod-stages.yaml, pretend pods,
  when started without the executor); its node IP and pod CIDR are on
  loopback, so nothing ever tries to reach a private address.

Each of them is a `Component` (devcluster/components.py: command, readiness, stop)
run by one `Supervisor` (devcluster/supervisor.py); `start_component`,
`stop_component`, `restart` and `check_alive` are the cluster's public interface
to them, what Kueue (devcluster/kueue.py) and MinIO use too.

    python -m devcluster.controlplane up [--state-dir .cluster]   # make cluster-up
    python -m devcluster.controlplane up --kueue                  # make cluster-up KUEUE=1
    python -m devcluster.controlplane status [--state-dir .cluster]
    python -m devcluster.controlplane down [--state-dir .cluster] # make cluster-down

Followed: the command-line references of kube-apiserver, kube-controller-manager
and kube-scheduler (kubernetes.io/docs/reference/command-line-tools-reference/),
kubeadm's static-pod manifests for which flags a real control plane sets,
"PKI certificates and requirements" (kubernetes.io/docs/setup/best-practices/
certificates/), and kwok's `kwok` command (`kwok --help` and
pkg/kwok/cmd/root.go at v0.8.0: --manage-nodes-with-annotation-selector,
--node-ip, --node-port, --cidr, --node-lease-duration-seconds, --config).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from devcluster import components
from devcluster.image_store import Image, ImageStore
from devcluster.images import base_image, ensure_images
from devcluster.kubeconfig import cert_auth, write_kubeconfig
from devcluster.kueue import Kueue, run_kueue
from devcluster.minio import minio_component
from devcluster.nodes import create_pools
from devcluster.pki import make_pki
from devcluster.supervisor import Component, Supervisor, alive, recorded, stop_recorded

REPO = Path(__file__).resolve().parents[1]
BUILD_SCRIPT = REPO / "hack" / "cluster" / "build.sh"
# Every process `up` may start, in start order; `down` stops them in reverse.
COMPONENTS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "pod-executor",
    "kueue",  # with start(kueue=True) / make cluster-up KUEUE=1 only (devcluster/kueue.py)
    "minio",  # make cluster-up only
)
OPTIONAL = frozenset({"kueue"})


def ensure_binaries(
    components: Sequence[str] = (), progress: IO[str] | None = None
) -> dict[str, Path]:
    """Paths of the built binaries by name, building what is missing first.

    A cold build takes many minutes (hack/cluster/README.md); build.sh logs its
    progress to `progress` (default: this process's stderr)."""
    out = subprocess.run(
        [str(BUILD_SCRIPT), *components],
        check=True,
        stdout=subprocess.PIPE,
        stderr=progress if progress is not None else None,
        text=True,
    ).stdout.split()
    found: dict[str, Path] = {}
    for directory in map(Path, out):
        for exe in directory.iterdir():
            # Files only: kueue's directory also holds its release manifests.
            if exe.is_file() and not exe.name.startswith("."):
                found[exe.name] = exe
    return found


@dataclass
class LocalCluster:
    """One local control plane. `start()` brings everything up; `stop()` ends it.

    Its components (devcluster/components.py, and Kueue's, MinIO's) run under one
    Supervisor (devcluster/supervisor.py): `start_component`, `stop_component`,
    `restart` and `check_alive` are how anything starts one on it or asks after them."""

    state_dir: Path
    bins: dict[str, Path]
    server: str = ""
    kubeconfig: Path = Path()
    # False: the components end when the process that started them dies (tests).
    # True: they run on until `down` (make cluster-up).
    outlive_caller: bool = False
    # Record every API request's metadata in audit.log (benchmarks).
    audit: bool = False
    # Set by start(kueue=True): Kueue's manager (devcluster/kueue.py).
    kueue: Kueue | None = None
    supervisor: Supervisor = field(init=False)
    _api: Any = None
    _images: ImageStore | None = None

    def __post_init__(self) -> None:
        self.supervisor = Supervisor(
            logs=self.logs,
            pids=self.state_dir / "pids",
            cwd=self.state_dir,
            outlive_caller=self.outlive_caller,
        )

    @property
    def pki(self) -> Path:
        return self.state_dir / "pki"

    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"

    @property
    def images(self) -> ImageStore:
        """The images this cluster's nodes have (`load_image` adds one)."""
        if self._images is None:
            self._images = ImageStore(self.state_dir / "images.json")
        return self._images

    def load_image(self, archive: Path, ref: str | None = None) -> Image:
        """Make an OCI archive's image present on every node, as `kind load
        image-archive` does: pods naming it start without a pull."""
        return self.images.load(archive, ref)

    # ---- components ------------------------------------------------------------------
    def start_component(self, *started: Component) -> None:
        """Start components on this cluster (in order; returns once each is ready)."""
        self.supervisor.start(*started)

    def stop_component(self, name: str) -> None:
        """Stop one component for good (SIGTERM, SIGKILL after the grace period); the
        others run on. For what a test starts on a running cluster (Kueue)."""
        self.supervisor.stop(name)

    def restart(self, name: str, down_seconds: float = 0.0) -> None:
        """Stop one component (SIGTERM, as a rolling update does), keep it down for
        `down_seconds`, start it again with the same command line (same port, same
        data); returns once it serves again. For the fault tests: kube-apiserver."""
        self.supervisor.restart(name, down_seconds)

    def check_alive(self) -> None:
        """Raise, with the tail of its log, if a component has exited."""
        self.supervisor.check_alive()

    def start(
        self,
        *,
        nodes: bool = True,
        executor: bool = True,
        pretend_pods: bool = True,
        kueue: bool = False,
    ) -> LocalCluster:
        """Start everything; on any failure, stop what was started and re-raise.

        `executor=False`: no pod runs; kwok pretends they do (Running, Jobs' pods
        Succeeded) unless `pretend_pods=False`, where bound pods stay Pending for ever
        (what a scale test of the operator wants: nothing changes after the Jobs exist).
        `kueue=True`: Kueue's manager too (`self.kueue`; needs `bins["kueue"]`).
        """
        try:
            self._start(nodes=nodes, executor=executor, pretend_pods=pretend_pods)
            if kueue:
                self.kueue = run_kueue(self)
            return self
        except BaseException:
            self.stop()
            raise

    def _start(self, *, nodes: bool, executor: bool, pretend_pods: bool) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        pki = make_pki(self.pki)
        etcd, etcd_url = components.etcd(self.bins["etcd"], self.state_dir / "etcd")
        self.start_component(etcd)
        apiserver, self.server = components.kube_apiserver(
            self.bins["kube-apiserver"],
            etcd_url,
            pki,
            self.state_dir / "apiserver-certs",
            self._audit_flags(),
        )
        self.start_component(apiserver)
        self.kubeconfig = self._kubeconfig(pki, "admin")
        self.start_component(*self._node_side(pki, executor, pretend_pods))
        if nodes:
            create_pools(self.api)
            self.wait_nodes_ready()
        (self.state_dir / "cluster.json").write_text(
            json.dumps({"server": self.server, "kubeconfig": str(self.kubeconfig)})
        )

    def _kubeconfig(self, pki: dict[str, Path], stem: str) -> Path:
        """The kubeconfig of a component (or the admin) by its client certificate."""
        path = self.state_dir / f"{stem}.kubeconfig"
        return write_kubeconfig(path, self.server, pki["ca.crt"], stem, cert_auth(pki, stem))

    def _node_side(
        self, pki: dict[str, Path], executor: bool, pretend_pods: bool
    ) -> list[Component]:
        """What runs once the API server serves: the controller manager, the scheduler,
        kwok and the executor (with it pods really run; without it kwok pretends)."""
        b = self.bins
        started = [
            components.kube_controller_manager(
                b["kube-controller-manager"], self._kubeconfig(pki, "kube-controller-manager"), pki
            ),
            components.kube_scheduler(b["kube-scheduler"], self._kubeconfig(pki, "kube-scheduler")),
            components.kwok(b["kwok"], self.kubeconfig, not executor and pretend_pods),
        ]
        if executor:
            pods = components.pod_executor(
                self.kubeconfig, self.state_dir / "pods", self.logs / "pods", self.images.index
            )
            started.append(pods)
        return started

    def _audit_flags(self) -> list[str | Path]:
        """With `audit`, every request's metadata (user, verb, resource) to audit.log:
        what a benchmark counts an operator's API requests by."""
        if not self.audit:
            return []
        policy = self.state_dir / "audit-policy.yaml"
        policy.write_text(yaml.safe_dump({
            "apiVersion": "audit.k8s.io/v1", "kind": "Policy",
            "omitStages": ["RequestReceived", "ResponseStarted"],
            "rules": [{"level": "Metadata"}],
        }))  # fmt: skip
        return ["--audit-policy-file", policy, "--audit-log-path", self.audit_log,
                "--audit-log-format", "json", "--audit-log-mode", "batch"]  # fmt: skip

    @property
    def audit_log(self) -> Path:
        return self.state_dir / "audit.log"

    def wait_nodes_ready(self, timeout: float = 60) -> None:
        """Until every node is Ready and carries no not-ready/unreachable taint
        (the node lifecycle controller lifts those a few seconds after kwok
        reports Ready): then the scheduler can place pods on every pool."""
        from kubernetes import client

        core: Any = client.CoreV1Api(self.api)
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            waiting = [
                n.metadata.name
                for n in core.list_node().items
                if not any(
                    c.type == "Ready" and c.status == "True" for c in n.status.conditions or []
                )
                or any(t.key.startswith("node.kubernetes.io/") for t in n.spec.taints or [])
            ]
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"nodes not Ready after {timeout}s: {waiting}")
            time.sleep(0.3)

    def stop(self) -> None:
        """Stop every component in reverse order, the executor first of the node side
        (it kills its pods' processes)."""
        self.supervisor.stop_all()

    # ---- clients ---------------------------------------------------------------------
    @property
    def api(self) -> Any:
        """A `kubernetes.client.ApiClient` authenticated as the cluster admin."""
        if self._api is None:
            self._api = self.api_client()
        return self._api

    def api_client(self, kubeconfig: Path | None = None) -> Any:
        """A new ApiClient for `kubeconfig` (default: the admin's)."""
        from kubernetes import config

        return config.new_client_from_config(str(kubeconfig or self.kubeconfig))  # type: ignore[no-untyped-call]

    def kubeconfig_for_service_account(
        self, namespace: str, name: str, expiration_seconds: int = 3600
    ) -> Path:
        """A kubeconfig that authenticates as system:serviceaccount:<namespace>:<name>,
        with a token from the TokenRequest API (what `kubectl create token` does)."""
        from kubernetes import client

        # The client takes plain manifests; its annotations name only its models.
        core: Any = client.CoreV1Api(self.api)
        token = core.create_namespaced_service_account_token(
            name, namespace, {"spec": {"expirationSeconds": expiration_seconds}}
        ).status.token
        path = self.state_dir / f"sa-{namespace}-{name}.kubeconfig"
        return write_kubeconfig(
            path, self.server, self.pki / "ca.crt", f"{namespace}-{name}", {"token": token}
        )

    def kubectl(
        self,
        *args: str,
        kubeconfig: Path | None = None,
        input: str | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run the built kubectl against this cluster (admin unless `kubeconfig`)."""
        env = {**os.environ, "KUBECONFIG": str(kubeconfig or self.kubeconfig)}
        done = subprocess.run(
            [str(self.bins["kubectl"]), *args],
            env=env,
            input=input,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check and done.returncode:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {done.stderr}")
        return done


# ---- the command line, for people (make cluster-up / cluster-down) ----------------------
def _pids(state_dir: Path) -> dict[str, int]:
    return recorded(state_dir / "pids", COMPONENTS)


def _status(state: Path, running: dict[str, int]) -> int:
    for name in COMPONENTS:
        pid = running.get(name)
        print(f"{name:24} {'running, pid ' + str(pid) if pid else 'not running'}")
    wanted = [n for n in COMPONENTS if n not in OPTIONAL or n in _pids(state)]
    return 0 if all(n in running for n in wanted) else 1


def _up(state: Path, kueue: bool) -> int:
    shutil.rmtree(state, ignore_errors=True)  # leftovers of a cluster that died
    bins = ensure_binaries(
        ("etcd", "kubernetes", "kwok", "helm", "minio", *(["kueue"] if kueue else []))
    )
    built = [base_image(sys.stderr), *ensure_images(progress=sys.stderr)]
    started = time.monotonic()
    cluster = LocalCluster(state, bins, outlive_caller=True).start(kueue=kueue)
    try:
        for image in built:
            print(f"loaded {cluster.load_image(image.archive).ref}")
        # An S3 endpoint too, so that the whole flow can be tried by hand.
        minio, s3 = minio_component(bins["minio"], state / "minio")
        cluster.start_component(minio)
    except BaseException:
        cluster.stop()
        raise
    print(f"local cluster up in {time.monotonic() - started:.1f}s (logs: {cluster.logs})")
    if cluster.kueue is not None:
        print(
            f"Kueue up in {cluster.kueue.start_seconds:.1f}s (webhooks at "
            f"{cluster.kueue.webhook_url}, log {cluster.kueue.log})"
        )
    print(cluster.kubectl("get", "nodes", "-L", "bodypose.dev/pool,nvidia.com/gpu.product").stdout)
    exports = {
        "KUBECONFIG": str(cluster.kubeconfig),
        "PATH": f"{bins['kubectl'].parent}:{bins['helm'].parent}:$PATH",
        **s3.environment(),
    }
    env_file = state / "env.sh"
    env_file.write_text("".join(f'export {k}="{v}"\n' for k, v in exports.items()))
    env_file.chmod(0o600)
    print(f"MinIO (S3) at {s3.url}; kubectl, helm and boto3 find everything after:")
    print(f"  source {env_file}")
    # The components run in their own sessions and outlive this command; `down`
    # stops them by the pids written under {state}/pids.
    cluster.supervisor.release()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devcluster.controlplane")
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--state-dir", type=Path, default=Path(".cluster"))
    parser.add_argument("--kueue", action="store_true", help="also run Kueue (up only)")
    args = parser.parse_args(argv)
    state: Path = args.state_dir.resolve()
    running = {n: p for n, p in _pids(state).items() if alive(p)}
    if args.action == "down":
        for name, pid in stop_recorded(_pids(state)):
            print(f"stopped {name} ({pid})")
        shutil.rmtree(state, ignore_errors=True)
        print(f"removed {state}")
        return 0
    if args.action == "status":
        return _status(state, running)
    if running:
        print(f"already up ({', '.join(running)}): export KUBECONFIG={state}/admin.kubeconfig")
        return 0
    return _up(state, args.kueue)


if __name__ == "__main__":
    sys.exit(main())
