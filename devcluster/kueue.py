"""Kueue on the local control plane: its real controller manager, on loopback.

The manager is built from Kueue's Go module (`hack/cluster/build.sh kueue`, pinned
in hack/cluster/modules/kueue) and installed from the release's own manifests,
which build.sh copies next to the binary from the same verified module zip
(`config/components/` of sigs.k8s.io/kueue, what its kustomize overlays and Helm
chart are made from):

- the CRDs (`crd/bases`), with the conversion webhooks of `crd/kustomization.yaml`'s
  patches (v1beta1 <-> v1beta2 through the manager's `/convert`);
- its RBAC (`rbac/`: the manager's ClusterRole and Roles, bound to the
  ServiceAccount kueue-system/kueue-controller-manager), with the names and the
  namespace `config/default/kustomization.yaml` gives them (`namePrefix: kueue-`,
  `namespace: kueue-system`); the manager authenticates as that ServiceAccount with a
  TokenRequest token, so the API server enforces exactly upstream's permissions;
- the Mutating/ValidatingWebhookConfigurations of `webhook/manifests.yaml`, for
  Kueue's own API and the enabled integrations (below).

The webhooks: the API server runs on loopback and cannot resolve the in-cluster
Service (`kueue-webhook-service.kueue-system.svc`) the manifests name, and Kueue's
internal certificate management issues certificates for that DNS name only
(pkg/util/cert/cert.go, `buildCertRotatorConfig`). So it is off
(`internalCertManagement.enable: false`); the webhook server listens on
127.0.0.1:<free port> with a serving certificate for 127.0.0.1 issued by this
cluster's CA (devcluster/pki.py), and each webhook's `clientConfig` becomes
`url: https://127.0.0.1:<port><path>` with that CA as its `caBundle`. They are
registered once the manager reports ready, and `start_kueue` returns only after a
dry-run Job shows both are live: the mutating one defaults a Job with the
`kueue.x-k8s.io/queue-name` label to `suspend: true`, the validating one refuses a
malformed queue name.

With internal certificate management off, cmd/kueue/main.go also reads the metrics
server's certificate from the fixed path /etc/kueue/metrics/certs/tls.{crt,key}
(and exits when it is missing). Nothing is written to the machine's /etc: the
manager runs in a mount namespace of its own (`unshare --mount`) whose /etc is a
read-only overlay of the real /etc and a directory of ours holding that path.

Configuration (Kueue's Configuration API, config.kueue.x-k8s.io/v1beta2):
`integrations.frameworks: [batch/job]`, `manageJobsWithoutQueueName: false` (only
Jobs that name a queue are Kueue's), no leader election (one replica), health,
metrics and webhook servers on 127.0.0.1 only, and the VisibilityOnDemand feature
off: its API server would want an APIService and certificates of its own
(/visibility), and nothing here reads pending-workload listings.

    with start_kueue(cluster) as kueue:      # tests (the `kueue` fixture)
        ...
    LocalCluster(...).start(kueue=True)      # make cluster-up KUEUE=1

Followed: Kueue v0.17.0's config/components/ and config/default/kustomization.yaml,
cmd/kueue/main.go (probes: /readyz waits for the webhook server), apis/config/
v1beta2/configuration_types.go, the "Dynamic Admission Control" page
(kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/:
`clientConfig.url`, `caBundle`) and the CRD versioning page
(kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definition-versioning/).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import os
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from devcluster.host import die_with_parent, free_port
from devcluster.nodes import GPU_TAINT, POOL_LABEL, Pool
from devcluster.pki import issue_certificate
from devcluster.probes import http_ok
from devcluster.supervisor import Command, Component, Readiness

GROUP = "kueue.x-k8s.io"
VERSION = "v1beta2"
NAMESPACE = "kueue-system"
NAME_PREFIX = "kueue-"
SERVICE_ACCOUNT = "kueue-controller-manager"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
# The job kinds Kueue manages here, by framework name (its Configuration API), and
# the (API group, resource) their webhooks are registered for. Kueue also serves a
# no-op webhook for every disabled framework; those are not registered: a pod
# webhook that admits everything but fails closed while Kueue is down would only
# make every pod in the cluster depend on it.
FRAMEWORK_RESOURCES = {"batch/job": ("batch", "jobs")}
# The manager's own permissions, from rbac/kustomization.yaml (the user-facing
# editor/viewer ClusterRoles are left out: nothing here aggregates them).
RBAC_FILES = (
    "service_account.yaml",
    "role.yaml",
    "role_binding.yaml",
    "leader_election_role.yaml",
    "leader_election_role_binding.yaml",
    "manager_secrets_role.yaml",
    "manager_secrets_role_binding.yaml",
    "manager_clusterprofiles_role.yaml",
    "manager_clusterprofiles_role_binding.yaml",
    "metrics_auth_role.yaml",
    "metrics_auth_role_binding.yaml",
)
# cmd/kueue/main.go reads the metrics certificate here when internal cert
# management is off; not configurable in v0.17.0.
METRICS_CERT_PATH = Path("etc/kueue/metrics/certs")
# As long as the cluster's certificates (devcluster/pki.py).
TOKEN_SECONDS = 30 * 24 * 3600


class Cluster(Protocol):
    """What Kueue needs of the cluster it runs on (devcluster/controlplane.py's
    LocalCluster): its files, its clients and its supervisor's public interface."""

    @property
    def state_dir(self) -> Path: ...
    @property
    def bins(self) -> dict[str, Path]: ...
    @property
    def pki(self) -> Path: ...
    @property
    def logs(self) -> Path: ...
    @property
    def api(self) -> Any: ...
    @property
    def outlive_caller(self) -> bool: ...
    def kubectl(
        self, *args: str, kubeconfig: Path | None = None, input: str | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]: ...  # fmt: skip
    def kubeconfig_for_service_account(
        self, namespace: str, name: str, expiration_seconds: int = 3600
    ) -> Path: ...
    def start_component(self, *started: Component) -> None: ...
    def stop_component(self, name: str) -> None: ...
    def check_alive(self) -> None: ...


@dataclass
class Kueue:
    """A running Kueue manager on a LocalCluster; `stop()` removes its webhooks, then
    ends it."""

    cluster: Cluster = field(repr=False)
    webhook_url: str
    health_url: str
    metrics_url: str
    kubeconfig: Path
    config: Path
    # (kind, name) of the webhook configurations registered for it
    webhook_configurations: tuple[tuple[str, str], ...] = ()
    start_seconds: float = 0.0
    _stopped: bool = field(default=False, repr=False)

    @property
    def log(self) -> Path:
        return self.cluster.logs / "kueue.log"

    def stop(self) -> None:
        """The webhook configurations go first: with Kueue gone they would refuse
        every Job create (failurePolicy: Fail). The CRDs, the RBAC and the
        namespace stay, as `helm uninstall` leaves CRDs; objects with Kueue's
        finalizers must be deleted while it runs."""
        if self._stopped:
            return
        self._stopped = True
        for kind, name in self.webhook_configurations:
            with contextlib.suppress(AssertionError):  # the API server may be gone already
                self.cluster.kubectl("delete", kind, name, "--ignore-not-found")
        self.cluster.stop_component("kueue")


def manifests_dir(binary: Path) -> Path:
    """The release manifests build.sh keeps next to the binary."""
    found = binary.parent / "manifests"
    if not (found / "crd" / "bases").is_dir():
        raise FileNotFoundError(f"{found}: no Kueue manifests; rebuild with hack/cluster/build.sh")
    return found


# libyaml's parser: the CRDs are 1.6 MB of YAML, 20 times faster to read than with
# PyYAML's pure-Python one (0.3 s against 6.6 s here).
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.load_all(path.read_text(), Loader=_Loader) if doc]


def _kustomized(doc: dict[str, Any]) -> dict[str, Any]:
    """What config/default/kustomization.yaml does to an RBAC object: `namePrefix:
    kueue-` on names and references, `namespace: kueue-system` on namespaced objects
    and ServiceAccount subjects."""
    doc = copy.deepcopy(doc)
    meta = doc["metadata"]
    meta["name"] = NAME_PREFIX + meta["name"]
    if "namespace" in meta or doc["kind"] in ("ServiceAccount", "Role", "RoleBinding"):
        meta["namespace"] = NAMESPACE
    if "roleRef" in doc:
        doc["roleRef"]["name"] = NAME_PREFIX + doc["roleRef"]["name"]
    for subject in doc.get("subjects", []):
        if subject["kind"] == "ServiceAccount":
            subject["name"] = NAME_PREFIX + subject["name"]
            subject["namespace"] = NAMESPACE
    return doc


def rbac_manifests(manifests: Path) -> list[dict[str, Any]]:
    """The namespace, the manager's ServiceAccount and its roles and bindings."""
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    rbac = [_kustomized(doc) for f in RBAC_FILES for doc in _load_all(manifests / "rbac" / f)]
    return [namespace, *rbac]


def crd_manifests(manifests: Path, webhook_url: str, ca_bundle: str) -> list[dict[str, Any]]:
    """The CRDs, each with the conversion webhook its kustomize patch gives it, the
    Service reference replaced by our loopback URL."""
    crd = manifests / "crd"
    conversions: dict[str, dict[str, Any]] = {}
    kustomization = yaml.safe_load((crd / "kustomization.yaml").read_text())
    for patch in kustomization.get("patches", []):
        (doc,) = _load_all(crd / patch["path"])
        conversion = doc["spec"]["conversion"]
        client = conversion["webhook"]["clientConfig"]
        path = client.pop("service")["path"]
        client.update({"url": webhook_url + path, "caBundle": ca_bundle})
        conversions[doc["metadata"]["name"]] = conversion
    crds = []
    for resource in kustomization["resources"]:
        (doc,) = _load_all(crd / resource)
        if doc["metadata"]["name"] in conversions:
            doc["spec"]["conversion"] = conversions[doc["metadata"]["name"]]
        crds.append(doc)
    return crds


def _targets(webhook: dict[str, Any], frameworks: Iterable[str]) -> bool:
    wanted = {FRAMEWORK_RESOURCES[f] for f in frameworks}
    for rule in webhook.get("rules", []):
        for group in rule["apiGroups"]:
            if group == GROUP or any((group, r) in wanted for r in rule["resources"]):
                return True
    return False


def webhook_manifests(
    manifests: Path, webhook_url: str, ca_bundle: str, frameworks: Iterable[str]
) -> list[dict[str, Any]]:
    """webhook/manifests.yaml with each clientConfig pointing at our loopback URL,
    kept to Kueue's own API and the enabled frameworks' job kinds."""
    frameworks = list(frameworks)
    docs = []
    for doc in _load_all(manifests / "webhook" / "manifests.yaml"):
        doc["metadata"]["name"] = NAME_PREFIX + doc["metadata"]["name"]
        kept = []
        for webhook in doc["webhooks"]:
            if not _targets(webhook, frameworks):
                continue
            path = webhook["clientConfig"]["service"]["path"]
            webhook["clientConfig"] = {"url": webhook_url + path, "caBundle": ca_bundle}
            kept.append(webhook)
        doc["webhooks"] = kept
        docs.append(doc)
    return docs


def configuration(
    *,
    health_port: int,
    metrics_port: int,
    webhook_port: int,
    cert_dir: Path,
    frameworks: Sequence[str],
) -> dict[str, Any]:
    """Kueue's Configuration (apis/config/v1beta2/configuration_types.go)."""
    return {
        "apiVersion": "config.kueue.x-k8s.io/v1beta2",
        "kind": "Configuration",
        "namespace": NAMESPACE,
        "health": {"healthProbeBindAddress": f"127.0.0.1:{health_port}"},
        "metrics": {"bindAddress": f"127.0.0.1:{metrics_port}"},
        "webhook": {"host": "127.0.0.1", "port": webhook_port, "certDir": str(cert_dir)},
        "leaderElection": {"leaderElect": False},
        "internalCertManagement": {"enable": False},
        "manageJobsWithoutQueueName": False,
        "integrations": {"frameworks": list(frameworks)},
        "featureGates": {"VisibilityOnDemand": False},
        # As upstream's controller_manager_config.yaml.
        "clientConnection": {"qps": 50, "burst": 100},
    }


def _in_own_mount_namespace(etc_layer: Path, argv: Sequence[str], pdeathsig: bool) -> list[str]:
    """`argv` run with /etc seen as a read-only overlay of `etc_layer` over the real
    /etc, in a mount namespace of its own (private propagation, unshare's default
    with --mount): the host's /etc is never written. As root a mount namespace is
    enough; otherwise a user namespace maps us to root in it (unprivileged overlay
    mounts need Linux 5.11 or later)."""
    if any(c in str(etc_layer) for c in ":,"):
        raise ValueError(f"{etc_layer}: ':' and ',' cannot appear in an overlay lowerdir")
    script = 'mount -t overlay kueue-etc -o "lowerdir=$1:/etc" /etc && shift && exec "$@"'
    inner = ["sh", "-c", script, "sh", str(etc_layer), *argv]
    if os.geteuid() == 0:
        return ["unshare", "--mount", "--", *inner]
    # Entering a user namespace clears the parent-death signal set outside it
    # (prctl(2), PR_SET_PDEATHSIG): set it again inside.
    return [
        "unshare", "--user", "--map-root-user", "--mount", "--",
        *(die_with_parent(inner) if pdeathsig else inner),
    ]  # fmt: skip


def _wait_webhooks_live(cluster: Cluster, timeout: float = 30) -> None:
    """Until the API server calls both webhooks: a registered configuration takes a
    moment to reach its admission plugins, and a Job created before that would
    start unsuspended, outside Kueue. Probed with dry-run creates (nothing stored)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    batch: Any = client.BatchV1Api(cluster.api)  # takes plain manifests

    def probe(queue: str) -> dict[str, Any]:
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "kueue-webhook-probe", "labels": {QUEUE_LABEL: queue}},
            "spec": {
                "suspend": False,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "probe", "image": "probe"}],
                    }
                },
            },
        }

    deadline = time.monotonic() + timeout
    mutated = refused = False
    while True:
        cluster.check_alive()
        if not mutated:
            job = batch.create_namespaced_job("default", probe("probe"), dry_run="All")
            mutated = bool(job.spec.suspend)
        if not refused:
            try:
                batch.create_namespaced_job("default", probe("Not_A_Queue"), dry_run="All")
            except ApiException as exc:
                refused = exc.status in (400, 403, 422) and "vjob.kb.io" in str(exc.body)
                if not refused:
                    raise
        if mutated and refused:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"Kueue's webhooks not in use after {timeout}s (mutating: {mutated}, "
                f"validating: {refused})"
            )
        time.sleep(0.2)


def _apply(cluster: Cluster, path: Path, docs: list[dict[str, Any]]) -> None:
    path.write_text(yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False))
    # Server-side: the Workload CRD is larger than the annotation client-side
    # apply keeps the last applied object in (256 KiB).
    cluster.kubectl(
        "apply", "--server-side", "--force-conflicts", "--field-manager", "devcluster-kueue",
        "-f", str(path),
    )  # fmt: skip


def run_kueue(
    cluster: Cluster, frameworks: Sequence[str] = ("batch/job",), binary: Path | None = None
) -> Kueue:
    """Install Kueue on `cluster` and start its manager; returns once its webhooks are
    in use. On failure, what was started is stopped and the error re-raised."""
    unknown = set(frameworks) - set(FRAMEWORK_RESOURCES)
    if unknown:
        raise ValueError(f"frameworks {sorted(unknown)}: only {sorted(FRAMEWORK_RESOURCES)}")
    if binary is None:
        if "kueue" not in cluster.bins:
            raise KeyError("no kueue binary in cluster.bins: hack/cluster/build.sh kueue")
        binary = cluster.bins["kueue"]
    started = time.monotonic()
    manifests = manifests_dir(binary)
    home = cluster.state_dir / "kueue"
    home.mkdir(parents=True, exist_ok=True)
    webhook_port = free_port()
    webhook_url = f"https://127.0.0.1:{webhook_port}"
    ca_bundle = base64.b64encode((cluster.pki / "ca.crt").read_bytes()).decode()
    kubeconfig = _install(cluster, manifests, home, webhook_url, ca_bundle)
    kueue, component = _manager(cluster, binary, home, webhook_port, kubeconfig, frameworks)
    try:
        # Ready: /readyz turns 200 once the webhook server serves (cmd/kueue/main.go).
        cluster.start_component(component)
        webhooks = webhook_manifests(manifests, webhook_url, ca_bundle, frameworks)
        kueue.webhook_configurations = tuple(
            (d["kind"].lower(), d["metadata"]["name"]) for d in webhooks
        )
        _apply(cluster, home / "webhooks.yaml", webhooks)
        _wait_webhooks_live(cluster)
    except BaseException:
        kueue.stop()
        raise
    kueue.start_seconds = time.monotonic() - started
    return kueue


def _install(
    cluster: Cluster, manifests: Path, home: Path, webhook_url: str, ca_bundle: str
) -> Path:
    """The CRDs (established) and the manager's RBAC; the kubeconfig of its ServiceAccount."""
    crds = crd_manifests(manifests, webhook_url, ca_bundle)
    _apply(cluster, home / "crds.yaml", crds)
    _apply(cluster, home / "rbac.yaml", rbac_manifests(manifests))
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        *(f"crd/{d['metadata']['name']}" for d in crds),
    )  # fmt: skip
    return cluster.kubeconfig_for_service_account(
        NAMESPACE, SERVICE_ACCOUNT, expiration_seconds=TOKEN_SECONDS
    )


def _manager(
    cluster: Cluster,
    binary: Path,
    home: Path,
    webhook_port: int,
    kubeconfig: Path,
    frameworks: Sequence[str],
) -> tuple[Kueue, Component]:
    """Kueue's manager as a component: its certificate and configuration written, its
    command in a mount namespace of its own, ready once its /readyz answers 200."""
    health_port, metrics_port = free_port(), free_port()
    # One serving certificate for the webhook and the metrics servers, both on
    # 127.0.0.1, from the CA the API server already trusts.
    etc_layer = home / "etc-layer"
    cert_dir = etc_layer / METRICS_CERT_PATH.relative_to("etc")
    issue_certificate(
        cluster.pki, cert_dir / "tls.crt", cert_dir / "tls.key", "kueue-webhook",
        server=True, ip_addresses=("127.0.0.1",), dns_names=("localhost",),
    )  # fmt: skip
    config = home / "config.yaml"
    settings = configuration(
        health_port=health_port,
        metrics_port=metrics_port,
        webhook_port=webhook_port,
        cert_dir=cert_dir,
        frameworks=frameworks,
    )
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    kueue = Kueue(
        cluster,
        webhook_url=f"https://127.0.0.1:{webhook_port}",
        health_url=f"http://127.0.0.1:{health_port}",
        metrics_url=f"https://127.0.0.1:{metrics_port}/metrics",
        kubeconfig=kubeconfig,
        config=config,
    )
    argv = [str(binary), "--config", str(config), "--zap-log-level", "info"]
    wrapped = _in_own_mount_namespace(etc_layer, argv, pdeathsig=not cluster.outlive_caller)
    ready = f"{kueue.health_url}/readyz"
    command = Command.of(wrapped, {**os.environ, "KUBECONFIG": str(kubeconfig)})
    return kueue, Component("kueue", command, Readiness(http_ok(ready), ready, timeout=90))


@contextlib.contextmanager
def start_kueue(
    cluster: Cluster, frameworks: Sequence[str] = ("batch/job",), binary: Path | None = None
) -> Iterator[Kueue]:
    """Kueue running on `cluster` for the `with` block; stopped (webhooks removed
    first) when it ends."""
    kueue = run_kueue(cluster, frameworks, binary)
    try:
        yield kueue
    finally:
        kueue.stop()


# ---- queue objects for the node pools (devcluster/nodes.py) ----------------------------
def resource_flavor(pool: Pool, name: str | None = None) -> dict[str, Any]:
    """A ResourceFlavor for one pool: admitted pods get its node labels as their node
    selector (the pool and the GPU model) and tolerate the GPU taint."""
    labels = {POOL_LABEL: pool.name}
    if pool.gpu_product:
        labels["nvidia.com/gpu.product"] = pool.gpu_product
    spec: dict[str, Any] = {"nodeLabels": labels}
    if pool.gpu_product:
        spec["nodeTaints"] = [GPU_TAINT]
        key, effect = GPU_TAINT["key"], GPU_TAINT["effect"]
        spec["tolerations"] = [{"key": key, "operator": "Exists", "effect": effect}]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ResourceFlavor",
        "metadata": {"name": name or pool.name},
        "spec": spec,
    }


def cluster_queue(
    name: str, quotas: Mapping[str, Mapping[str, str | int]], **spec: Any
) -> dict[str, Any]:
    """A ClusterQueue with one resource group: `quotas` maps each flavor to its
    nominal quota per resource (every flavor must name the same resources)."""
    resources = sorted({r for quota in quotas.values() for r in quota})
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ClusterQueue",
        "metadata": {"name": name},
        "spec": {
            "namespaceSelector": {},
            "resourceGroups": [
                {
                    "coveredResources": resources,
                    "flavors": [
                        {
                            "name": flavor,
                            "resources": [{"name": r, "nominalQuota": quota[r]} for r in resources],
                        }
                        for flavor, quota in quotas.items()
                    ],
                }
            ],
            **spec,
        },
    }


def local_queue(namespace: str, name: str, cluster_queue_name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "LocalQueue",
        "metadata": {"namespace": namespace, "name": name},
        "spec": {"clusterQueue": cluster_queue_name},
    }


def workload_of(api: Any, namespace: str, job_uid: str) -> dict[str, Any] | None:
    """The Workload Kueue made for a Job (owned by it), or None yet."""
    from kubernetes import client

    custom: Any = client.CustomObjectsApi(api)
    listed = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "workloads")
    for workload in listed["items"]:
        owners = workload["metadata"].get("ownerReferences", [])
        if any(o.get("uid") == job_uid for o in owners):
            return dict(workload)
    return None


def condition(obj: Mapping[str, Any], kind: str) -> dict[str, Any] | None:
    """The status condition of type `kind`, or None."""
    for cond in obj.get("status", {}).get("conditions", []):
        if cond["type"] == kind:
            return dict(cond)
    return None
