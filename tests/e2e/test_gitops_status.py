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
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from devcluster.controlplane import LocalCluster
from devcluster.crd import install_crd
from devcluster.minio import S3Server
from devcluster.operator_process import start_operator
from tests.infra.wait import wait_for
from tests.support.argocd import LUA, health

CANARY = "CANARY-KEY-7f3a9c2e51d4"


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


@pytest.mark.skipif(LUA is None, reason="no Lua interpreter (make tools installs lua5.4)")
def test_kstatus_and_argocd_read_real_statuses_and_the_key_leaks_nowhere(
    cluster: LocalCluster,
    namespace: str,
    minio_endpoint: S3Server,
    s3_bucket: str,
    canary_model: Path,
    kstatus: Path,
    tmp_path: Path,
) -> None:
    install_crd(cluster.api_client())
    s3 = minio_endpoint.client()
    s3.upload_file(str(canary_model), s3_bucket, "models/canary.tlt")
    core: Any = client.CoreV1Api(cluster.api_client())
    custom: Any = client.CustomObjectsApi(cluster.api_client())
    batch: Any = client.BatchV1Api(cluster.api_client())
    for name, data in (("model-key", {"key": CANARY}), ("wrong-key", {"key": "not-the-key"}),
                       ("s3-credentials", minio_endpoint.environment())):  # fmt: skip
        core.create_namespaced_secret(namespace, {"metadata": {"name": name}, "stringData": data})
    log = tmp_path / "operator.log"
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

    seen: list[tuple[str, tuple[str, str], tuple[str, str]]] = []

    def judge(moment: str, obj: dict[str, Any]) -> tuple[str, str]:
        verdict = kstatus_of(kstatus, obj)
        seen.append((moment, verdict, health(obj)))
        return verdict[0], health(obj)[0]

    try:
        apply(body("gitops", s3_bucket, "model-key"))
        # (Content of its own: nothing of "gitops" is reused for it through the index.)
        apply(body("wrong", s3_bucket, "wrong-key", input={"height": 288, "width": 384}))
        building = wait_for(lambda: when("gitops", "Exporting", "Building"), 120, "work under way")
        assert judge("building", building) == ("InProgress", "Progressing")
        wrong = wait_for(lambda: when("wrong", "Failed"), 300, "the wrong key to fail")
        assert judge("wrong key", wrong) == ("Failed", "Degraded")
        assert kstatus_of(kstatus, wrong)[1].startswith("export: ")
        ready = wait_for(lambda: when("gitops", "Ready"), 600, "gitops to be Ready")
        assert judge("ready", ready) == ("Current", "Healthy")

        apply(body("gitops", s3_bucket, "model-key", input={"height": 256, "width": 320}))
        changed = get("gitops")  # the new generation, not yet observed
        assert changed["metadata"]["generation"] == 2
        assert judge("spec changed", changed) == ("InProgress", "Progressing")
        again = wait_for(lambda: when("gitops", "Ready"), 600, "the new generation Ready")
        assert judge("ready again", again) == ("Current", "Healthy")
    finally:
        operator.stop()
    print("\n".join(f"{m}: kstatus {k[0]} ({k[1]}); argocd {a[0]} ({a[1]})" for m, k, a in seen))

    # The key leak search.
    forms = [CANARY, base64.b64encode(CANARY.encode()).decode()]
    haystacks: dict[str, str] = {
        "events": json.dumps([e.to_dict() for e in core.list_namespaced_event(namespace).items],
                             default=str),
        "resources": json.dumps([get("gitops"), get("wrong")], default=str),
        "jobs": json.dumps([j.to_dict() for j in batch.list_namespaced_job(namespace).items],
                           default=str),
        "pods": json.dumps([p.to_dict() for p in core.list_namespaced_pod(namespace).items],
                           default=str),
        "operator log": operator.log.read_text(errors="replace"),
    }  # fmt: skip
    pod_logs = sorted((cluster.logs / "pods" / namespace).rglob("*.log"))
    assert len(pod_logs) >= 4  # two exports, two builds at least
    for path in pod_logs:
        haystacks[f"pod log {path.name}"] = path.read_text(errors="replace")
    found = s3.list_objects_v2(Bucket=s3_bucket, Prefix="artifacts/").get("Contents", [])
    assert len(found) >= 8
    blobs = {o["Key"]: s3.get_object(Bucket=s3_bucket, Key=o["Key"])["Body"].read() for o in found}
    hits = [where for where, text in haystacks.items() if any(f in text for f in forms)]
    hits += [key for key, data in blobs.items() if any(f.encode() in data for f in forms)]
    assert hits == [], f"the model key appears in: {hits}"
    # The search can find it: the Secret holds it (its own, base64 form).
    secret = core.read_namespaced_secret("model-key", namespace)
    assert forms[1] in json.dumps(secret.to_dict(), default=str)
