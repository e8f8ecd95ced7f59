"""The control plane's components, each as a `Component` (devcluster/supervisor.py): its
command line, its readiness check and its stop. All bind 127.0.0.1 on free ports.

Flags as kubeadm's static-pod manifests set them for a single control-plane node,
less what needs real kubelets; the reasons are in devcluster/controlplane.py's
docstring and hack/cluster/README.md. Followed: the command-line references of
kube-apiserver, kube-controller-manager and kube-scheduler
(kubernetes.io/docs/reference/command-line-tools-reference/) and kwok's `kwok`
command (pkg/kwok/cmd/root.go at v0.8.0).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from devcluster.host import free_port
from devcluster.probes import client_tls, http_ok, unverified_tls
from devcluster.supervisor import Command, Component, Readiness, Stop

REPO = Path(__file__).resolve().parents[1]
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


def etcd(binary: Path, data_dir: Path) -> tuple[Component, str]:
    """etcd on free ports; and its client URL."""
    url = f"http://127.0.0.1:{free_port()}"
    peer_url = f"http://127.0.0.1:{free_port()}"
    argv: list[str | Path] = [
        binary, "--name", "local", "--data-dir", data_dir,
        "--listen-client-urls", url, "--advertise-client-urls", url,
        "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
        "--initial-cluster", f"local={peer_url}",
        "--listen-metrics-urls", f"http://127.0.0.1:{free_port()}",
        # Throwaway data: fsync buys nothing here and costs seconds.
        "--unsafe-no-fsync", "--log-level", "warn",
    ]  # fmt: skip
    ready = Readiness(http_ok(f"{url}/health"), f"{url}/health")
    return Component("etcd", Command.of(argv), ready), url


def kube_apiserver(
    binary: Path,
    etcd_url: str,
    pki: Mapping[str, Path],
    cert_dir: Path,
    extra: Sequence[str | Path] = (),
) -> tuple[Component, str]:
    """kube-apiserver on a free port, ready once /readyz answers our admin; and its URL."""
    port = free_port()
    server = f"https://127.0.0.1:{port}"
    argv: list[str | Path] = [
        binary,
        "--etcd-servers", etcd_url,
        "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
        "--secure-port", str(port),
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
        "--cert-dir", cert_dir,
        *extra,
    ]  # fmt: skip
    tls = client_tls(pki["ca.crt"], pki["admin.crt"], pki["admin.key"])
    ready = Readiness(http_ok(f"{server}/readyz", tls), f"{server}/readyz", timeout=90)
    return Component("kube-apiserver", Command.of(argv), ready), server


def _healthz(port: int) -> Readiness:
    url = f"https://127.0.0.1:{port}/healthz"
    return Readiness(http_ok(url, unverified_tls()), url)


def kube_controller_manager(binary: Path, kubeconfig: Path, pki: Mapping[str, Path]) -> Component:
    """Every controller, each under its own service account (RBAC as a real cluster)."""
    port = free_port()
    argv: list[str | Path] = [
        binary,
        "--kubeconfig", kubeconfig, "--authentication-kubeconfig", kubeconfig,
        "--authorization-kubeconfig", kubeconfig,
        "--bind-address", "127.0.0.1", "--secure-port", str(port),
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
    ]  # fmt: skip
    return Component("kube-controller-manager", Command.of(argv), _healthz(port))


def kube_scheduler(binary: Path, kubeconfig: Path) -> Component:
    port = free_port()
    argv: list[str | Path] = [
        binary,
        "--kubeconfig", kubeconfig, "--authentication-kubeconfig", kubeconfig,
        "--authorization-kubeconfig", kubeconfig,
        "--bind-address", "127.0.0.1", "--secure-port", str(port),
        "--leader-elect=false",
    ]  # fmt: skip
    return Component("kube-scheduler", Command.of(argv), _healthz(port))


def kwok(binary: Path, kubeconfig: Path, pretend_pods: bool) -> Component:
    """kwok's controller for the nodes annotated `kwok.x-k8s.io/node=fake`; with
    `pretend_pods`, its pod stages too (pods Running, Jobs' pods Succeeded, none run).
    Its readiness is the nodes' (LocalCluster.wait_nodes_ready)."""
    port = free_port()
    stages = [KWOK_STAGES, KWOK_POD_STAGES] if pretend_pods else [KWOK_STAGES]
    argv: list[str | Path] = [
        binary,
        "--kubeconfig", kubeconfig,
        *[arg for file in stages for arg in ("--config", file)],
        "--manage-all-nodes=false",
        "--manage-nodes-with-annotation-selector", "kwok.x-k8s.io/node=fake",
        "--node-ip", "127.0.0.1", "--node-port", str(port),
        "--server-address", f"127.0.0.1:{port}",
        "--cidr", POD_CIDR,
        "--node-lease-duration-seconds", "40",
    ]  # fmt: skip
    return Component("kwok", Command.of(argv))


def pod_executor(kubeconfig: Path, work_dir: Path, log_dir: Path, images: Path) -> Component:
    """The nodes' kubelet for pods (devcluster/executor/). SIGTERM when its starter
    dies, not SIGKILL: it ends the pods' processes on the way out."""
    argv: list[str | Path] = [
        sys.executable, "-m", "devcluster.executor", "--kubeconfig", kubeconfig,
        "--work-dir", work_dir, "--log-dir", log_dir, "--images", images,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    stop = Stop(signal.SIGTERM, on_parent_death="TERM")
    return Component("pod-executor", Command.of(argv, env), stop=stop)
