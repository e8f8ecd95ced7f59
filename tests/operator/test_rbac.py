"""The chart's RBAC on the real API server: what it grants is what the operator calls, and
with watchNamespaces listed it reaches nothing outside them.

Two checks, each against `helm install` of the chart on the real kube-apiserver:

- `kubectl auth can-i --as=system:serviceaccount:<release ns>:bodypose-operator`, for
  each verb the operator uses: yes in a watched namespace, no in any other (and no across
  all namespaces) when namespaces are listed; yes everywhere when it watches all; never
  what it does not use (list Secrets, create pods, patch Jobs, watch nodes);
- the operator itself (`bodypose-operator`, kopf and all) runs as the chart's
  ServiceAccount through a resource's export, build and a spec edit; the API server's
  audit log lists every request it made: none was refused, and each grant of the chart
  was used (so none is there for nothing).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from bodypose_operator.builders.jobs import S3_OPTIONAL_KEYS, S3_REQUIRED_KEYS
from devcluster.controlplane import LocalCluster
from devcluster.operator_process import start_operator
from tests.conftest import S3Endpoint
from tests.infra.audit import lines
from tests.infra.cluster import fresh_namespace
from tests.infra.wait import wait_for
from tests.support.helm import CHART, helm_run
from tests.support.operator_fakes import CREDENTIALS, body, put_manifest

SA_NAME = "bodypose-operator"
S3_KEYS = (*S3_REQUIRED_KEYS, *S3_OPTIONAL_KEYS)

#: Every (verb, resource[, subresource]) the operator makes in a namespace it watches:
#: kopf's (list and watch its resources and Jobs, patch a resource's annotations, post
#: events, with peering list, watch and patch its KopfPeering) and controller/cluster.py's
#: (get a resource, patch its status, list, create and delete Jobs, list pods, get the
#: resource's Secret), Kueue's Workloads and the Job a Workload names with queueing on.
#: The audit test below checks this list against what a running operator asks.
NAMESPACED_CALLS: tuple[tuple[str, str, str], ...] = (
    ("get", "bodyposeexports.bodypose.dev", ""),
    ("list", "bodyposeexports.bodypose.dev", ""),
    ("watch", "bodyposeexports.bodypose.dev", ""),
    ("patch", "bodyposeexports.bodypose.dev", ""),
    ("patch", "bodyposeexports.bodypose.dev", "status"),
    ("list", "jobs.batch", ""),
    ("watch", "jobs.batch", ""),
    ("create", "jobs.batch", ""),
    ("delete", "jobs.batch", ""),
    ("list", "pods", ""),
    ("create", "events", ""),
    ("get", "secrets", ""),
    ("list", "kopfpeerings.kopf.dev", ""),
    ("watch", "kopfpeerings.kopf.dev", ""),
    ("patch", "kopfpeerings.kopf.dev", ""),
    ("list", "workloads.kueue.x-k8s.io", ""),
    ("watch", "workloads.kueue.x-k8s.io", ""),
    ("get", "jobs.batch", ""),
)
#: What it never does, anywhere: these stay "no" whatever the values.
NEVER: tuple[tuple[str, str, str], ...] = (
    ("list", "secrets", ""),
    ("watch", "secrets", ""),
    ("create", "pods", ""),
    ("delete", "pods", ""),
    ("update", "jobs.batch", ""),
    ("patch", "jobs.batch", ""),
    ("create", "bodyposeexports.bodypose.dev", ""),
    ("delete", "bodyposeexports.bodypose.dev", ""),
    ("update", "bodyposeexports.bodypose.dev", "status"),
    ("get", "pods", "log"),
    ("create", "events.events.k8s.io", ""),
    ("create", "serviceaccounts", "token"),
    ("patch", "workloads.kueue.x-k8s.io", ""),
)
#: Cluster-scoped: nodes are listed (a CPU pool's Node Feature Discovery labels) whatever
#: watchNamespaces says; kopf's CRD list and watch only when it watches every namespace.
NODES = ("list", "nodes", "")
CRDS = (("list", "customresourcedefinitions.apiextensions.k8s.io", ""),
        ("watch", "customresourcedefinitions.apiextensions.k8s.io", ""))  # fmt: skip
CLUSTER_NEVER = (
    ("get", "nodes", ""),
    ("watch", "nodes", ""),
    ("patch", "nodes", ""),
    ("list", "namespaces", ""),
)

#: The finalizer kopf put on resources while the resync was a kopf timer (kopf's default).
KOPF_FINALIZER = "kopf.zalando.org/KopfFinalizerMarker"


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str  # the release's (the ServiceAccount's)

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{SA_NAME}"


@contextlib.contextmanager
def installed(
    api: LocalCluster, helm: Path, namespace: str, *values: str, name: str = ""
) -> Iterator[Release]:
    release = Release(name or f"rbac-{uuid.uuid4().hex[:6]}", namespace)
    done = helm_run(
        helm, "install", release.name, str(CHART), "--namespace", namespace, *values,
        kubeconfig=api.kubeconfig,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    try:
        yield release
    finally:
        helm_run(helm, "uninstall", release.name, "--namespace", namespace,
                 kubeconfig=api.kubeconfig)  # fmt: skip


def can_i(api: LocalCluster, release: Release, call: tuple[str, str, str], *where: str) -> str:
    verb, resource, subresource = call
    extra = [f"--subresource={subresource}"] if subresource else []
    done = api.kubectl(
        "auth", "can-i", verb, resource, *extra, f"--as={release.user}", *where, check=False
    )
    return done.stdout.strip()


def answers(
    api: LocalCluster, release: Release, calls: tuple[tuple[str, str, str], ...], *where: str
) -> dict[str, str]:
    # Each question is a kubectl process that mostly waits on the API server: asked a few
    # at a time, the same answers in a fraction of the time (these tests ask 69 and 92).
    with ThreadPoolExecutor(max_workers=4) as pool:
        said = list(pool.map(lambda call: can_i(api, release, call, *where), calls))
    return {" ".join(filter(None, call)): answer for call, answer in zip(calls, said, strict=True)}


#: Kueue's Workload API, served only for `kubectl auth can-i` to know the resource (it asks
#: discovery): its group, plural and scope as Kueue's CRD has them; no Kueue runs here.
WORKLOAD_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "workloads.kueue.x-k8s.io"},
    "spec": {
        "group": "kueue.x-k8s.io",
        "names": {"kind": "Workload", "plural": "workloads", "singular": "workload",
                  "listKind": "WorkloadList"},
        "scope": "Namespaced",
        "versions": [{"name": "v1beta1", "served": True, "storage": True, "schema": {
            "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        }}],
    },
}  # fmt: skip


@pytest.fixture
def workloads_served(api_server: LocalCluster) -> Iterator[None]:
    """The Workload CRD on the shared API server for one test, removed afterwards (the
    other tests of the session expect no Kueue)."""
    api_server.kubectl("apply", "-f", "-", input=json.dumps(WORKLOAD_CRD))
    try:
        api_server.kubectl(
            "wait", "--for=condition=Established", "crd/workloads.kueue.x-k8s.io", "--timeout=30s"
        )
        yield
    finally:
        api_server.kubectl("delete", "crd", "workloads.kueue.x-k8s.io", "--wait=true")


@pytest.mark.usefixtures("workloads_served")
def test_listed_namespaces_grant_each_call_there_and_nowhere_else(
    api_server: LocalCluster, helm: Path
) -> None:
    with (
        fresh_namespace(api_server) as ops,
        fresh_namespace(api_server) as ml,
        fresh_namespace(api_server) as other,
        installed(
            api_server, helm, ops, "--set", f"watchNamespaces={{{ml}}}", "--set", "replicas=2",
            "--set", "kueue.enabled=true",
        ) as release,
    ):  # fmt: skip
        every = {" ".join(filter(None, c)) for c in NAMESPACED_CALLS}
        assert answers(api_server, release, NAMESPACED_CALLS, "-n", ml) == dict.fromkeys(
            every, "yes"
        )
        # Not in another namespace, not in its own, not across all of them: no Job (so no
        # pod with any ServiceAccount or Secret) outside the watched namespace.
        for where in (("-n", other), ("-n", ops), ("-A",)):
            assert answers(api_server, release, NAMESPACED_CALLS, *where) == dict.fromkeys(
                every, "no"
            ), where
        assert answers(api_server, release, NEVER, "-n", ml) == dict.fromkeys(
            (" ".join(filter(None, c)) for c in NEVER), "no"
        )
        assert can_i(api_server, release, NODES) == "yes"
        for call in (*CRDS, *CLUSTER_NEVER):
            assert can_i(api_server, release, call) == "no", call


@pytest.mark.usefixtures("workloads_served")
def test_watching_every_namespace_grants_each_call_everywhere_and_kopf_its_crd_reads(
    api_server: LocalCluster, helm: Path
) -> None:
    with (
        fresh_namespace(api_server) as ops,
        fresh_namespace(api_server) as other,
        installed(
            api_server, helm, ops, "--set", "replicas=2", "--set", "kueue.enabled=true"
        ) as release,
    ):
        peering = ("list", "watch", "patch")
        calls = tuple(
            (verb, "clusterkopfpeerings.kopf.dev" if "kopfpeerings" in res else res, sub)
            for verb, res, sub in NAMESPACED_CALLS
        )
        assert {v for v, r, _ in calls if r.startswith("clusterkopfpeerings")} == set(peering)
        for where in (("-n", other), ("-A",)):
            found = answers(api_server, release, calls, *where)
            assert set(found.values()) == {"yes"}, (where, found)
            assert set(answers(api_server, release, NEVER, *where).values()) == {"no"}, where
        assert can_i(api_server, release, NODES) == "yes"
        for call in CRDS:
            assert can_i(api_server, release, call) == "yes", call
        for call in CLUSTER_NEVER:
            assert can_i(api_server, release, call) == "no", call


# --- The grants are the calls: a running operator's requests, from the audit log ---------

Grant = tuple[str, str, str, str | None]  # apiGroup, resource[/subresource], verb, namespace


def granted(docs: list[dict[str, Any]], release: Release) -> set[Grant]:
    """What the rendered chart grants the ServiceAccount: each bound rule, expanded, with the
    namespace of its RoleBinding (None: cluster-wide)."""
    roles = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d
             for d in docs if d["kind"] in ("Role", "ClusterRole")}  # fmt: skip
    found: set[Grant] = set()
    for binding in docs:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        subjects = binding["subjects"]
        assert {"kind": "ServiceAccount", "name": SA_NAME, "namespace": release.namespace} in (
            subjects
        )
        ns = binding["metadata"].get("namespace")
        ref = binding["roleRef"]
        role = roles[(ref["kind"], ns if ref["kind"] == "Role" else None, ref["name"])]
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        found.add((group, resource, verb, ns))
    return found


@dataclass(frozen=True)
class Call:
    group: str
    resource: str  # with /subresource
    verb: str
    namespace: str | None
    code: int
    uri: str
    message: str  # the API server's words with a refusal


def calls_of(api: LocalCluster, user: str, since: int) -> list[Call]:
    """Every request `user` made after the first `since` lines of the audit log."""
    found = []
    with api.audit_log.open() as log:
        for index, line in enumerate(log):
            if index < since:
                continue
            event = json.loads(line)
            if event.get("user", {}).get("username") != user:
                continue
            ref = event.get("objectRef") or {}
            resource = ref.get("resource", "")
            if ref.get("subresource"):
                resource += "/" + ref["subresource"]
            found.append(Call(
                ref.get("apiGroup", ""), resource, event["verb"], ref.get("namespace"),
                event.get("responseStatus", {}).get("code", 0), event.get("requestURI", ""),
                event.get("responseStatus", {}).get("message", ""),
            ))  # fmt: skip
    return found


def _allowed(call: Call, grants: set[Grant]) -> bool:
    key = (call.group, call.resource, call.verb)
    return (*key, None) in grants or (call.namespace is not None and (*key, call.namespace)
                                      in grants)  # fmt: skip


def _used(grant: Grant, calls: list[Call]) -> bool:
    group, resource, verb, namespace = grant
    return any(
        (c.group, c.resource, c.verb) == (group, resource, verb)
        and (namespace is None or c.namespace == namespace)
        for c in calls
    )


def used_but_watches(api: LocalCluster, user: str, since: int, grants: set[Grant]) -> bool:
    """Whether `user` has used every grant but the watches since line `since`. A watch
    reaches the audit log when it ends (the cluster's policy omits ResponseStarted), which
    is when the operator stops: waiting for those as well always ran out the wait. The
    assertions after the stop judge every grant, watches included."""
    calls = calls_of(api, user, since)
    return all(_used(g, calls) for g in grants if g[2] != "watch")


def _status(api: LocalCluster, namespace: str, name: str) -> dict[str, Any]:
    custom: Any = client.CustomObjectsApi(api.api)
    found = custom.get_namespaced_custom_object(
        "bodypose.dev", "v1alpha1", namespace, "bodyposeexports", name
    )
    return dict(found.get("status") or {})


@pytest.mark.parametrize("watching", ["listed", "all"])
def test_the_chart_grants_exactly_what_the_running_operator_calls(
    api_server: LocalCluster,
    helm: Path,
    s3_endpoint: S3Endpoint,
    bucket: str,
    tmp_path: Path,
    watching: str,
) -> None:
    with fresh_namespace(api_server) as ops, fresh_namespace(api_server) as ml:
        values = ["--set", "replicas=2"]
        if watching == "listed":
            values += ["--set", f"watchNamespaces={{{ml}}}"]
        name = f"rbac-{uuid.uuid4().hex[:6]}"
        rendered = helm_run(helm, "template", name, str(CHART), "--namespace", ops, *values)
        assert rendered.returncode == 0, rendered.stderr
        core: Any = client.CoreV1Api(api_server.api)
        custom: Any = client.CustomObjectsApi(api_server.api)
        core.create_namespaced_secret(ml, {
            "metadata": {"name": CREDENTIALS}, "stringData": s3_endpoint.environment(),
        })  # fmt: skip
        # A resource an earlier operator marked with kopf's finalizer (its resync was a kopf
        # timer): this one's kopf takes the finalizer off (the grant to patch resources is
        # for that), or the resource could never be deleted.
        marked = body(bucket)
        marked["metadata"] = {"name": "marked", "finalizers": [KOPF_FINALIZER]}
        custom.create_namespaced_custom_object(
            "bodypose.dev", "v1alpha1", ml, "bodyposeexports", marked
        )
        with installed(api_server, helm, ops, *values, name=name) as release:
            grants = granted([d for d in yaml.safe_load_all(rendered.stdout) if d], release)
            mark = lines(api_server)
            operator = start_operator(
                api_server.kubeconfig_for_service_account(ops, SA_NAME),
                tmp_path / "operator.log",
                extra_env={
                    "BODYPOSE_PEERING": f"bodypose-operator-{release.name}",
                    "POD_ID": "rbac-op",
                    "BODYPOSE_PENDING_CHECK_SECONDS": "1",  # a look at the pods: none start
                    "BODYPOSE_RESYNC_SECONDS": "2",  # sees the manifests the test writes
                },
                namespaces=(ml,) if watching == "listed" else (),
            )
            try:
                # int8 with an ONNX Runtime target: the pool's nodes are listed.
                resource = body(
                    bucket, precision="int8", calibration={"imagesUri": f"s3://{bucket}/cal"},
                    targets=[{"name": "cpu", "backend": "onnxruntime",
                              "nodeSelector": {"bodypose.dev/pool": "cpu"}}],
                )  # fmt: skip
                resource["metadata"] = {"name": "granted"}
                custom.create_namespaced_custom_object(
                    "bodypose.dev", "v1alpha1", ml, "bodyposeexports", resource
                )
                exporting = wait_for(
                    lambda: (s := _status(api_server, ml, "granted")).get("phase") == "Exporting"
                    and s, 90, "the export Job",
                )  # fmt: skip
                # The export Job as the API server has it: the S3 keys by name, no envFrom.
                batch: Any = client.BatchV1Api(api_server.api)
                (job,) = [j for j in batch.list_namespaced_job(ml).items
                          if j.metadata.name.startswith("granted-")]  # fmt: skip
                (container,) = job.spec.template.spec.containers
                assert container.env_from is None
                by_name = {e.name: e.value_from.secret_key_ref for e in container.env
                           if e.value_from and e.value_from.secret_key_ref}  # fmt: skip
                assert {
                    n: (r.name, r.key) for n, r in by_name.items() if r.name == CREDENTIALS
                } == {k: (CREDENTIALS, k) for k in S3_KEYS}
                prefix = f"s3://{bucket}/out/{ml}/granted/{exporting['contentKey']}"
                put_manifest(s3_endpoint, f"{prefix}/manifest.json", {"artifacts": []})
                wait_for(lambda: _status(api_server, ml, "granted").get("phase") == "Building",
                         60, "the build Job")  # fmt: skip
                # A spec edit: the running build Job is of an obsolete content key, deleted.
                custom.patch_namespaced_custom_object(
                    "bodypose.dev", "v1alpha1", ml, "bodyposeexports", "granted",
                    {"spec": {"input": {"height": 256, "width": 448}}},
                    _content_type="application/merge-patch+json",
                )  # fmt: skip

                wait_for(
                    lambda: not custom.get_namespaced_custom_object(
                        "bodypose.dev", "v1alpha1", ml, "bodyposeexports", "marked"
                    )["metadata"].get("finalizers"),
                    60, "kopf to take its old finalizer off",
                )  # fmt: skip
                custom.delete_namespaced_custom_object(
                    "bodypose.dev", "v1alpha1", ml, "bodyposeexports", "marked"
                )
                with contextlib.suppress(TimeoutError):
                    wait_for(lambda: used_but_watches(api_server, release.user, mark, grants),
                             60, "every grant used")  # fmt: skip
            finally:
                operator.stop()
            log = operator.log.read_text()
            lines(api_server)  # waits out the audit log's last batch
            calls = calls_of(api_server, release.user, mark)
        # A 403 of RBAC's, not the NamespaceLifecycle admission's: watching every namespace,
        # the operator also posts events to resources of other tests' namespaces on this
        # API server, refused while those are being deleted ("because it is being
        # terminated"), which says nothing about the chart's grants.
        refused = sorted({f"{c.verb} {c.uri} -> {c.code}" for c in calls
                          if c.code == 403 and "being terminated" not in c.message})  # fmt: skip
        assert not refused, (refused, log[-3000:])
        assert calls, "no request of the operator's in the audit log"
        unauthorised = sorted(
            {f"{c.verb} {c.group}/{c.resource} in {c.namespace}"
             for c in calls if c.resource and not _allowed(c, grants)}
        )  # fmt: skip
        assert not unauthorised, unauthorised
        unused = sorted(str(g) for g in grants if not _used(g, calls))
        assert not unused, (unused, log[-3000:])
        assert "Not enough permissions" not in log, log[-3000:]
        assert "Traceback" not in log, log[-3000:]
