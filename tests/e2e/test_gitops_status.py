"""What GitOps tools read from real resources, and a search for the model key everywhere.

One end-to-end run on the real control plane (operator process, pods from the
exporter image, MinIO): a resource whose model is encrypted with a recognisable
key, and one whose Secret holds a wrong key. Each status is read at the moments
a GitOps tool would look, and judged by two independent readers:

- kstatus itself: our small Go program over `sigs.k8s.io/cli-utils/pkg/kstatus/status`
  (hack/cluster/modules/kstatus, built from its Go module like the cluster tools),
  which is what Flux's and kpt's waits compute: building -> InProgress, Ready ->
  Current, wrong key -> Failed, a spec changed after Ready -> InProgress, then Current;
- the chart's Argo CD health check (argocd/health.lua) in a real Lua interpreter:
  Progressing, Healthy, Degraded for the same objects.

Then the key-leak search: the key in any form (as written, base64) must not
appear in the events, the statuses, the Job and pod specs, the operator's log,
any pod's log, or any object the run wrote to S3.

The run is one module fixture and each reader is its own test: the key-leak
search needs no Lua and is never skipped, and the Argo CD check fails, never
skips, on a machine without a Lua interpreter (`make tools` installs lua5.4,
and `make test` runs it first).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from devcluster.controlplane import LocalCluster
from devcluster.crd import install_crd
from devcluster.minio import S3Server
from devcluster.operator_process import start_operator
from tests.infra.cluster import fresh_namespace
from tests.infra.wait import wait_for
from tests.support.argocd import LUA, health

CANARY = "CANARY-KEY-7f3a9c2e51d4"
#: The moments a GitOps tool looks, in order, and what kstatus and Argo CD must say then.
MOMENTS = {
    "building": ("InProgress", "Progressing"),
    "wrong key": ("Failed", "Degraded"),
    "ready": ("Current", "Healthy"),
    "spec changed": ("InProgress", "Progressing"),
    "ready again": ("Current", "Healthy"),
}


@pytest.fixture(scope="module")
def canary_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from bodypose_exporter.stages.sample import write_sample_model

    path = tmp_path_factory.mktemp("canary") / "bpnet_canary.tlt"
    write_sample_model(path, CANARY)
    return path


def kstatus_of(binary: Path, obj: dict[str, Any]) -> tuple[str, str]:
    done = subprocess.run(
        [str(binary)], input=json.dumps(obj), capture_output=True, text=True, check=True
    )
    (result,) = json.loads(done.stdout)
    return result["status"], result["message"]


def body(name: str, bucket: str, key_secret: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "bodypose.dev/v1alpha1", "kind": "BodyPoseExport",
        "metadata": {"name": name},
        "spec": {
            "model": {"uri": f"s3://{bucket}/models/canary.tlt",
                      "keySecretRef": {"name": key_secret, "key": "key"}},
            "input": {"height": 224, "width": 320}, "precision": "fp32",
            "targets": [{"name": "cpu", "nodeSelector": {"bodypose.dev/pool": "cpu"},
                         "backend": "onnxruntime"}],
            "output": {"uri": f"s3://{bucket}/artifacts",
                       "credentialsSecretRef": {"name": "s3-credentials"}},
            **spec,
        },
    }  # fmt: skip


def key_forms(key: str) -> list[str]:
    """The key as written and as a Secret's data holds it (base64)."""
    return [key, base64.b64encode(key.encode()).decode()]


def leaks(key: str, texts: dict[str, str], blobs: dict[str, bytes]) -> list[str]:
    """Where `key`, in any of its forms, appears: the names of the texts and blobs."""
    forms = key_forms(key)
    hits = [where for where, text in texts.items() if any(f in text for f in forms)]
    return hits + [name for name, data in blobs.items() if any(f.encode() in data for f in forms)]


def require_lua() -> str:
    """The Lua interpreter Argo CD's check runs in; without one the test fails, never skips."""
    if LUA is None:
        pytest.fail(
            "no Lua interpreter (lua5.4 or lua) on PATH: the chart's Argo CD health check "
            "cannot be judged; `make tools` installs lua5.4 (and `make test` runs it first)",
            pytrace=False,
        )
    return LUA


@dataclass(frozen=True)
class GitopsRun:
    """What one run left for the readers: the resources at each moment, and every place the
    key must not be."""

    statuses: dict[str, dict[str, Any]]  # moment -> the resource as read then
    texts: dict[str, str]  # events, resources, Jobs, pods, operator log, each pod's log
    blobs: dict[str, bytes]  # every object written under artifacts/
    pod_logs: int
    secret: str  # the model-key Secret as the API returns it: where the key must be found


@pytest.fixture(scope="module")
def run(
    cluster: LocalCluster,
    minio_endpoint: S3Server,
    canary_model: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GitopsRun]:
    install_crd(cluster.api_client())
    s3 = minio_endpoint.client()
    s3_bucket = f"test-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=s3_bucket)
    s3.upload_file(str(canary_model), s3_bucket, "models/canary.tlt")
    core: Any = client.CoreV1Api(cluster.api_client())
    custom: Any = client.CustomObjectsApi(cluster.api_client())
    batch: Any = client.BatchV1Api(cluster.api_client())
    with fresh_namespace(cluster) as namespace:
        for name, data in (("model-key", {"key": CANARY}), ("wrong-key", {"key": "not-the-key"}),
                           ("s3-credentials", minio_endpoint.environment())):  # fmt: skip
            core.create_namespaced_secret(
                namespace, {"metadata": {"name": name}, "stringData": data}
            )
        log = tmp_path_factory.mktemp("gitops") / "operator.log"
        operator = start_operator(cluster.kubeconfig, log, namespaces=(namespace,))

        def apply(doc: dict[str, Any]) -> None:
            cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(doc))

        def get(name: str) -> dict[str, Any]:
            return dict(custom.get_namespaced_custom_object(
                "bodypose.dev", "v1alpha1", namespace, "bodyposeexports", name))  # fmt: skip

        def when(name: str, *phases: str) -> dict[str, Any] | None:
            obj = get(name)
            status = obj.get("status") or {}
            current = status.get("observedGeneration") == obj["metadata"]["generation"]
            return obj if current and status.get("phase") in phases else None

        statuses: dict[str, dict[str, Any]] = {}
        try:
            apply(body("gitops", s3_bucket, "model-key"))
            # (Content of its own: nothing of "gitops" is reused for it through the index.)
            apply(body("wrong", s3_bucket, "wrong-key", input={"height": 288, "width": 384}))
            statuses["building"] = wait_for(
                lambda: when("gitops", "Exporting", "Building"), 120, "work under way"
            )
            statuses["wrong key"] = wait_for(
                lambda: when("wrong", "Failed"), 300, "the wrong key to fail"
            )
            statuses["ready"] = wait_for(lambda: when("gitops", "Ready"), 600, "gitops Ready")
            apply(body("gitops", s3_bucket, "model-key", input={"height": 256, "width": 320}))
            statuses["spec changed"] = get("gitops")  # the new generation, not yet observed
            assert statuses["spec changed"]["metadata"]["generation"] == 2
            statuses["ready again"] = wait_for(
                lambda: when("gitops", "Ready"), 600, "the new generation Ready"
            )
        finally:
            operator.stop()

        texts: dict[str, str] = {
            "events": json.dumps(
                [e.to_dict() for e in core.list_namespaced_event(namespace).items], default=str
            ),
            "resources": json.dumps([get("gitops"), get("wrong")], default=str),
            "jobs": json.dumps(
                [j.to_dict() for j in batch.list_namespaced_job(namespace).items], default=str
            ),
            "pods": json.dumps(
                [p.to_dict() for p in core.list_namespaced_pod(namespace).items], default=str
            ),
            "operator log": operator.log.read_text(errors="replace"),
        }
        pod_logs = sorted((cluster.logs / "pods" / namespace).rglob("*.log"))
        for path in pod_logs:
            texts[f"pod log {path.name}"] = path.read_text(errors="replace")
        found = s3.list_objects_v2(Bucket=s3_bucket, Prefix="artifacts/").get("Contents", [])
        blobs = {
            o["Key"]: s3.get_object(Bucket=s3_bucket, Key=o["Key"])["Body"].read() for o in found
        }
        secret = json.dumps(
            core.read_namespaced_secret("model-key", namespace).to_dict(), default=str
        )
        yield GitopsRun(statuses, texts, blobs, len(pod_logs), secret)


def test_kstatus_reads_the_real_statuses(run: GitopsRun, kstatus: Path) -> None:
    seen = {moment: kstatus_of(kstatus, obj) for moment, obj in run.statuses.items()}
    print("\n".join(f"{m}: kstatus {k[0]} ({k[1]})" for m, k in seen.items()))
    assert {m: k[0] for m, k in seen.items()} == {m: k for m, (k, _) in MOMENTS.items()}
    assert seen["wrong key"][1].startswith("export: ")


def test_argocd_health_reads_the_real_statuses(run: GitopsRun) -> None:
    require_lua()
    seen = {moment: health(obj) for moment, obj in run.statuses.items()}
    print("\n".join(f"{m}: argocd {a[0]} ({a[1]})" for m, a in seen.items()))
    assert {m: a[0] for m, a in seen.items()} == {m: a for m, (_, a) in MOMENTS.items()}


def test_the_model_key_leaks_nowhere(run: GitopsRun) -> None:
    """Needs no Lua: it runs, and can fail, wherever the cluster runs."""
    assert run.pod_logs >= 4  # two exports, two builds at least
    assert len(run.blobs) >= 8
    assert leaks(CANARY, run.texts, run.blobs) == [], "the model key leaked"
    # The search can find it: the Secret holds it (its own, base64 form).
    assert leaks(CANARY, {"secret": run.secret}, {}) == ["secret"]


# Without a cluster: the search itself, and the Lua requirement.


def test_the_leak_search_finds_the_key_in_each_form() -> None:
    plain, encoded = key_forms(CANARY)
    texts = {"clean log": "nothing here", "pod log": f"key={plain}", "event": f"data {encoded}"}
    blobs = {"artifacts/manifest.json": b"{}", "artifacts/x.etlt": b"\0" + encoded.encode()}
    assert leaks(CANARY, texts, blobs) == ["pod log", "event", "artifacts/x.etlt"]
    assert leaks(CANARY, {"clean log": "nothing here"}, {"a": b""}) == []


def test_a_missing_lua_fails_the_argocd_check_instead_of_skipping(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys.modules[__name__], "LUA", None)
    with pytest.raises(pytest.fail.Exception) as failed:
        require_lua()
    assert str(failed.value) == (
        "no Lua interpreter (lua5.4 or lua) on PATH: the chart's Argo CD health check cannot be "
        "judged; `make tools` installs lua5.4 (and `make test` runs it first)"
    )
