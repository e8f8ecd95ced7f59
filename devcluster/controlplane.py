"""A real Kubernetes control plane on loopback, without Docker.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler built from
their Go modules (`hack/cluster/build.sh`), kwok playing the kubelet of fake
GPU and CPU nodes (`devcluster/nodes.py`), and the executor that runs every
bound pod inside its image (`devcluster/executor.py`; images are loaded with
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
import base64
import contextlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import yaml

from devcluster.host import die_with_parent, free_port
from devcluster.image_store import Image, ImageStore
from devcluster.images import base_image, ensure_images
from devcluster.minio import minio_command, wait_ready
from devcluster.nodes import create_pools
from devcluster.pki import make_pki

if TYPE_CHECKING:
    from devcluster.kueue import Kueue

REPO = Path(__file__).resolve().parents[1]
BUILD_SCRIPT = REPO / "hack" / "cluster" / "build.sh"
KWOK_STAGES = REPO / "hack" / "cluster" / "kwok-stages.yaml"
KWOK_POD_STAGES = REPO / "hack" / "cluster" / "kwok-pod-stages.yaml"
SERVICE_CIDR = "10.96.0.0/16"
# kwok gives its pods addresses from here: loopback, so that nothing that
# follows a pod IP ever leaves the machine.
POD_CIDR = "127.100.0.0/16"
ADMISSION_PLUGINS = ",".join(
    [
        # kube-apiserver's defaults (listed so that the set is visible here)...
        "NamespaceLifecycle",
        "LimitRanger",
        "ServiceAccount",
        "TaintNodesByCondition",
        "PodSecurity",
        "Priority",
        "DefaultTolerationSeconds",
        "DefaultStorageClass",
        "StorageObjectInUseProtection",
        "PersistentVolumeClaimResize",
        "RuntimeClass",
        "CertificateApproval",
        "CertificateSigning",
        "CertificateSubjectRestriction",
        "DefaultIngressClass",
        "MutatingAdmissionWebhook",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionWebhook",
        "ResourceQuota",
        # ...and the one kubeadm adds.
        "NodeRestriction",
    ]
)
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


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(path: Path, server: str, ca: Path, user: str, auth: dict[str, str]) -> Path:
    """A self-contained kubeconfig (credentials embedded): copy it anywhere."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "bodypose-local",
                "cluster": {"server": server, "certificate-authority-data": _b64(ca)},
            }
        ],
        "users": [{"name": user, "user": auth}],
        "contexts": [
            {"name": user, "context": {"cluster": "bodypose-local", "user": user}},
        ],
        "current-context": user,
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def _cert_auth(pki: dict[str, Path], stem: str) -> dict[str, str]:
    return {
        "client-certificate-data": _b64(pki[f"{stem}.crt"]),
        "client-key-data": _b64(pki[f"{stem}.key"]),
    }


@dataclass
class LocalCluster:
    """One local control plane. `start()` brings everything up; `stop()` ends it."""

    state_dir: Path
    bins: dict[str, Path]
    server: str = ""
    kubeconfig: Path = Path()
    # False: the components end when the process that started them dies (tests).
    # True: they run on until `down` (make cluster-up).
    outlive_caller: bool = False
    # Record every API request's metadata in audit.log (benchmarks).
    audit: bool = False
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # Set by start(kueue=True): Kueue's manager (devcluster/kueue.py).
    kueue: Kueue | None = None
    _api: Any = None
    _images: ImageStore | None = None
    _commands: dict[str, tuple[list[str | Path], dict[str, str] | None]] = field(
        default_factory=dict
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

    # ---- processes -------------------------------------------------------------------
    def _spawn(
        self, name: str, args: Sequence[str | Path], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        self._commands[name] = (list(args), env)
        with (self.logs / f"{name}.log").open("ab") as log:
            # Own session: `make cluster-up` returns while they keep running, and
            # a signal to the group reaches a component's children too.
            argv = [str(a) for a in args]
            self.procs[name] = subprocess.Popen(
                # The executor needs its SIGTERM: it ends the pods' processes.
                argv
                if self.outlive_caller
                else die_with_parent(argv, "TERM" if name == "pod-executor" else "KILL"),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.state_dir,
                env=env,
            )
        (self.state_dir / "pids").mkdir(exist_ok=True)
        (self.state_dir / "pids" / name).write_text(str(self.procs[name].pid))
        return self.procs[name]

    def restart(self, name: str, down_seconds: float = 0.0) -> None:
        """Stop one component (SIGTERM, as a rolling update does), keep it down for
        `down_seconds`, start it again with the same command line (same port, same
        data); returns once it serves again. For the fault tests: kube-apiserver."""
        _terminate([self.procs.pop(name)])
        time.sleep(down_seconds)
        args, env = self._commands[name]
        self._spawn(name, args, env)
        if name == "kube-apiserver":
            self._wait_http(f"{self.server}/readyz", name, timeout=90)

    def stop_component(self, name: str) -> None:
        """Stop one component for good (SIGTERM, SIGKILL after the grace period); the
        others run on. For what a test starts on a running cluster (Kueue)."""
        proc = self.procs.pop(name, None)
        if proc is not None:
            _terminate([proc])
        (self.state_dir / "pids" / name).unlink(missing_ok=True)

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tail = (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")

    def _wait_http(self, url: str, what: str, timeout: float = 60, ca: bool = True) -> None:
        if ca:
            ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
            ctx.load_cert_chain(self.pki / "admin.crt", self.pki / "admin.key")
        else:
            # The controller manager and the scheduler serve /healthz with a
            # certificate they made themselves: only liveness is asked, on loopback.
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            with contextlib.suppress(OSError):
                scheme_ctx = ctx if url.startswith("https") else None
                with urllib.request.urlopen(url, context=scheme_ctx, timeout=2) as resp:
                    if resp.status == 200:
                        return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} not ready at {url} after {timeout}s")
            time.sleep(0.2)

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
                from devcluster.kueue import run_kueue

                self.kueue = run_kueue(self)
            return self
        except BaseException:
            self.stop()
            raise

    def _start(self, *, nodes: bool, executor: bool, pretend_pods: bool) -> LocalCluster:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        pki = make_pki(self.pki)
        b = self.bins
        etcd_url = f"http://127.0.0.1:{free_port()}"
        peer_url = f"http://127.0.0.1:{free_port()}"
        self._spawn("etcd", [
            b["etcd"], "--name", "local", "--data-dir", self.state_dir / "etcd",
            "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
            "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
            "--initial-cluster", f"local={peer_url}",
            "--listen-metrics-urls", f"http://127.0.0.1:{free_port()}",
            # Throwaway data: fsync buys nothing here and costs seconds.
            "--unsafe-no-fsync", "--log-level", "warn",
        ])  # fmt: skip
        self._wait_http(f"{etcd_url}/health", "etcd")

        api_port = free_port()
        self.server = f"https://127.0.0.1:{api_port}"
        self._spawn("kube-apiserver", [
            b["kube-apiserver"],
            "--etcd-servers", etcd_url,
            "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
            "--secure-port", str(api_port),
            "--tls-cert-file", pki["apiserver.crt"], "--tls-private-key-file", pki["apiserver.key"],
            "--client-ca-file", pki["ca.crt"],
            # The aggregation layer's front proxy, as kubeadm sets it up.
            "--requestheader-client-ca-file", pki["front-proxy-ca.crt"],
            "--requestheader-allowed-names", "front-proxy-client",
            "--requestheader-username-headers", "X-Remote-User",
            "--requestheader-group-headers", "X-Remote-Group",
            "--requestheader-extra-headers-prefix", "X-Remote-Extra-",
            "--proxy-client-cert-file", pki["front-proxy-client.crt"],
            "--proxy-client-key-file", pki["front-proxy-client.key"],
            "--authorization-mode", "Node,RBAC",
            "--enable-admission-plugins", ADMISSION_PLUGINS,
            "--allow-privileged=true",
            "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file", pki["sa.pub"],
            "--service-account-signing-key-file", pki["sa.key"],
            "--service-cluster-ip-range", SERVICE_CIDR,
            # The `kubernetes` Service cannot point at a loopback address.
            "--endpoint-reconciler-type", "none",
            # kwok's node addresses are 127.0.0.1; never look a node name up in DNS.
            "--kubelet-preferred-address-types", "InternalIP",
            "--profiling=false",
            "--cert-dir", self.state_dir / "apiserver-certs",
            *self._audit_flags(),
        ])  # fmt: skip
        self._wait_http(f"{self.server}/readyz", "kube-apiserver", timeout=90)
        self.kubeconfig = write_kubeconfig(
            self.state_dir / "admin.kubeconfig",
            self.server,
            pki["ca.crt"],
            "admin",
            _cert_auth(pki, "admin"),
        )
        component_config = {
            stem: write_kubeconfig(
                self.state_dir / f"{stem}.kubeconfig",
                self.server,
                pki["ca.crt"],
                stem,
                _cert_auth(pki, stem),
            )
            for stem in ("kube-controller-manager", "kube-scheduler")
        }
        kcm_port, sched_port, kwok_port = free_port(), free_port(), free_port()
        kcm = component_config["kube-controller-manager"]
        self._spawn("kube-controller-manager", [
            b["kube-controller-manager"],
            "--kubeconfig", kcm, "--authentication-kubeconfig", kcm,
            "--authorization-kubeconfig", kcm,
            "--bind-address", "127.0.0.1", "--secure-port", str(kcm_port),
            "--leader-elect=false",
            "--use-service-account-credentials=true",
            "--service-account-private-key-file", pki["sa.key"],
            "--root-ca-file", pki["ca.crt"],
            "--cluster-signing-cert-file", pki["ca.crt"],
            "--cluster-signing-key-file", pki["ca.key"],
            "--controllers", "*,bootstrapsigner,tokencleaner",
            # New nodes carry the not-ready taint until the node lifecycle
            # controller sees them Ready: look every second, not every five.
            "--node-monitor-period", "1s",
            "--cluster-name", "bodypose-local",
        ])  # fmt: skip
        sched = component_config["kube-scheduler"]
        self._spawn("kube-scheduler", [
            b["kube-scheduler"],
            "--kubeconfig", sched, "--authentication-kubeconfig", sched,
            "--authorization-kubeconfig", sched,
            "--bind-address", "127.0.0.1", "--secure-port", str(sched_port),
            "--leader-elect=false",
        ])  # fmt: skip
        # With the executor, pods really run; without it kwok pretends they do.
        stages = [KWOK_STAGES] if executor or not pretend_pods else [KWOK_STAGES, KWOK_POD_STAGES]
        self._spawn("kwok", [
            b["kwok"],
            "--kubeconfig", self.kubeconfig,
            *[arg for file in stages for arg in ("--config", file)],
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector", "kwok.x-k8s.io/node=fake",
            "--node-ip", "127.0.0.1", "--node-port", str(kwok_port),
            "--server-address", f"127.0.0.1:{kwok_port}",
            "--cidr", POD_CIDR,
            "--node-lease-duration-seconds", "40",
        ])  # fmt: skip
        if executor:
            self._spawn("pod-executor", [
                sys.executable, "-m", "devcluster.executor", "--kubeconfig", self.kubeconfig,
                "--work-dir", self.state_dir / "pods", "--log-dir", self.logs / "pods",
                "--images", self.images.index,
            ], env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
        if nodes:
            create_pools(self.api)
        self._wait_http(
            f"https://127.0.0.1:{kcm_port}/healthz", "kube-controller-manager", ca=False
        )
        self._wait_http(f"https://127.0.0.1:{sched_port}/healthz", "kube-scheduler", ca=False)
        if nodes:
            self.wait_nodes_ready()
        (self.state_dir / "cluster.json").write_text(
            json.dumps({"server": self.server, "kubeconfig": str(self.kubeconfig)})
        )
        return self

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
            self._check_alive()
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
        """Stop every component, the executor first (it kills its pods' processes)."""
        _terminate(list(reversed(self.procs.values())))
        self.procs.clear()

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


def _terminate(procs: Iterable[subprocess.Popen[bytes]], grace: float = 10) -> None:
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


# ---- the command line, for people (make cluster-up / cluster-down) ----------------------
def _pids(state_dir: Path) -> dict[str, int]:
    pids = {}
    for name in COMPONENTS:
        file = state_dir / "pids" / name
        if file.exists():
            pids[name] = int(file.read_text())
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is not alive; /proc says so where kill(0) cannot.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[-1].split()[0] == "Z")


def _down(state_dir: Path, grace: float = 10) -> None:
    for name, pid in reversed(list(_pids(state_dir).items())):
        if not _alive(pid):
            continue
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        print(f"stopped {name} ({pid})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devcluster.controlplane")
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--state-dir", type=Path, default=Path(".cluster"))
    parser.add_argument("--kueue", action="store_true", help="also run Kueue (up only)")
    args = parser.parse_args(argv)
    state: Path = args.state_dir.resolve()
    running = {n: p for n, p in _pids(state).items() if _alive(p)}
    if args.action == "down":
        _down(state)
        shutil.rmtree(state, ignore_errors=True)
        print(f"removed {state}")
        return 0
    if args.action == "status":
        for name in COMPONENTS:
            pid = running.get(name)
            print(f"{name:24} {'running, pid ' + str(pid) if pid else 'not running'}")
        wanted = [n for n in COMPONENTS if n not in OPTIONAL or n in _pids(state)]
        return 0 if all(n in running for n in wanted) else 1
    if running:
        print(f"already up ({', '.join(running)}): export KUBECONFIG={state}/admin.kubeconfig")
        return 0
    shutil.rmtree(state, ignore_errors=True)  # leftovers of a cluster that died
    bins = ensure_binaries(
        ("etcd", "kubernetes", "kwok", "helm", "minio", *(["kueue"] if args.kueue else []))
    )
    built = [base_image(sys.stderr), *ensure_images(progress=sys.stderr)]
    started = time.monotonic()
    cluster = LocalCluster(state, bins, outlive_caller=True).start(kueue=args.kueue)
    try:
        for image in built:
            print(f"loaded {cluster.load_image(image.archive).ref}")
        # An S3 endpoint too, so that the whole flow can be tried by hand.
        argv, env, s3 = minio_command(bins["minio"], state / "minio")
        wait_ready(s3, cluster._spawn("minio", argv, env), cluster.logs / "minio.log")
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
    cluster.procs.clear()
    return 0


if __name__ == "__main__":
    sys.exit(main())
