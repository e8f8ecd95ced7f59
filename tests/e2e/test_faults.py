"""Faults a cluster really has, on the real control plane, MinIO and images.

Each test drives real resources through a real fault and then asserts the end
state and that nothing was lost or duplicated: one Job per stage (names are
deterministic), every manifest naming objects that exist with the sha256 it
records, the status naming only what S3 holds.

- `test_kills_of_the_operator_and_of_a_build_and_a_build_that_always_fails`
  (the shared cluster): the operator SIGKILLed while build Jobs run, a build
  container SIGKILLed mid-run (while a gate, tests/infra/s3_gate.py, holds its
  publish, so it cannot finish first; the Job's retry builds it; the status
  says so),
  a `tensorrt` target whose image has no TensorRT (fails for good, exit 2, so
  the Job fails at once: that target Failed with the reason, the others Ready,
  the resource Stalled once they settle), and a spec changed
  mid-build (the old generation's Jobs go; the status names only the new
  generation's artifacts).
- `test_s3_down_during_an_upload_and_the_api_server_restarted` (a cluster and a
  MinIO of its own, since both are stopped): MinIO killed while the gate holds
  the export's first artifact upload, and started again, then kube-apiserver
  restarted while the builds run; the operator's watches resume and the
  resource reaches Ready.
- `test_a_minute_of_s3_outage_during_a_build_is_retried_and_ends_ready` (the
  shared cluster, a MinIO of its own, which it stops for a minute).

The resource deleted mid-build is tested in test_operator_flow.py; the operator
killed during the export there too, and in test_operator_peering.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from devcluster.controlplane import LocalCluster
from devcluster.crd import install_crd
from devcluster.images import BuiltImage
from devcluster.minio import MinioProcess, S3Server
from devcluster.operator_process import OperatorProcess, start_operator
from tests.conftest import SAMPLE_KEY
from tests.infra.audit import created, deleted, job_writes
from tests.infra.s3_gate import S3Gate
from tests.infra.wait import wait_for

GPU_TOLERATION = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def target(name: str, backend: str = "onnxruntime") -> dict[str, Any]:
    gpu = name != "cpu"
    return {
        "name": name,
        "nodeSelector": {"bodypose.dev/pool": name},
        "backend": backend,
        **({"tolerations": GPU_TOLERATION,
            "resources": {"limits": {"nvidia.com/gpu": "1"}}} if gpu else {}),
    }  # fmt: skip


def manifest(name: str, bucket: str, targets: list[dict[str, Any]], **spec: Any) -> str:
    body = {
        "apiVersion": "bodypose.dev/v1alpha1", "kind": "BodyPoseExport",
        "metadata": {"name": name},
        "spec": {
            "model": {"uri": f"s3://{bucket}/models/bpnet.tlt",
                      "keySecretRef": {"name": "bpnet-key", "key": "key"}},
            "input": {"height": 224, "width": 320}, "precision": "fp32",
            "targets": targets,
            "output": {"uri": f"s3://{bucket}/artifacts",
                       "credentialsSecretRef": {"name": "s3-credentials"}},
            **spec,
        },
    }  # fmt: skip
    return yaml.safe_dump(body)


class Scene:
    """One namespace's view: resources, Jobs, pods, S3 and the operator(s) watching it."""

    def __init__(self, cluster: LocalCluster, namespace: str, s3: S3Server, bucket: str) -> None:
        self.cluster, self.namespace, self.s3, self.bucket = cluster, namespace, s3, bucket
        self.custom: Any = client.CustomObjectsApi(cluster.api_client())
        self.batch: Any = client.BatchV1Api(cluster.api_client())
        self.core: Any = client.CoreV1Api(cluster.api_client())

    def prepare(self, sample: Path) -> None:
        s3 = self.s3.client()
        s3.upload_file(str(sample / "bpnet_sample.tlt"), self.bucket, "models/bpnet.tlt")
        for name, data in (("bpnet-key", {"key": SAMPLE_KEY}),
                           ("s3-credentials", self.s3.environment())):  # fmt: skip
            self.core.create_namespaced_secret(
                self.namespace, {"metadata": {"name": name}, "stringData": data}
            )

    def apply(self, text: str) -> None:
        self.cluster.kubectl("apply", "-n", self.namespace, "-f", "-", input=text)

    def status(self, name: str) -> dict[str, Any]:
        obj = self.custom.get_namespaced_custom_object(
            "bodypose.dev", "v1alpha1", self.namespace, "bodyposeexports", name
        )
        return dict(obj.get("status") or {})

    def condition(self, name: str, type_: str) -> dict[str, Any] | None:
        return next((c for c in self.status(name).get("conditions", []) if c["type"] == type_),
                    None)  # fmt: skip

    def jobs(self, resource: str, stage: str | None = None) -> list[Any]:
        selector = f"bodypose.dev/export={resource}"
        if stage:
            selector += f",bodypose.dev/stage={stage}"
        return list(self.batch.list_namespaced_job(self.namespace, label_selector=selector).items)

    def phase(self, name: str, *phases: str) -> dict[str, Any] | None:
        status = self.status(name)
        return status if status.get("phase") in phases else None

    def check_published(self, name: str) -> None:
        """Every manifest under the resource's prefix names objects that exist with the
        sha256 it records, and so does the status."""
        s3 = self.s3.client()
        status = self.status(name)
        prefix = f"artifacts/{self.namespace}/{name}/{status['contentKey']}/"
        listed = s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix).get("Contents", [])
        manifests = [o["Key"] for o in listed if o["Key"].endswith("manifest.json")]
        assert manifests, f"no manifest under {prefix}"
        recorded: dict[str, str] = {}
        for key in manifests:
            body = json.loads(s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
            for artifact in body.get("artifacts", []):
                recorded[artifact["path"]] = artifact["sha256"]
        in_status = [status["artifacts"][k] for k in ("etlt", "onnx") if k in status["artifacts"]]
        in_status += [{"uri": t["engineUri"], "sha256": t["sha256"]}
                      for t in status.get("targets", []) if t.get("engineUri")]  # fmt: skip
        for entry in in_status:
            assert recorded.get(entry["uri"]) == entry["sha256"], entry
        for uri, sha in recorded.items():
            bucket, _, key = uri.removeprefix("s3://").partition("/")
            data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            assert hashlib.sha256(data).hexdigest() == sha, f"{uri}: sha256 differs from manifest"


def container_pids(needle: str) -> list[int]:
    """Host pids of processes whose command line contains `needle` (the executor runs
    each container as a process of this machine)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if needle in cmdline and "bpnet" in cmdline:
            found.append(int(entry.name))
    return found


@pytest.fixture
def operator_env(images: list[BuiltImage]) -> dict[str, str]:
    exporter = next(i.ref for i in images if i.name == "exporter")
    # The GPU image does not exist here: the CPU exporter stands in for it, so a
    # `tensorrt` target runs a real build that fails on every try for want of TensorRT.
    return {"BODYPOSE_EXPORTER_GPU_IMAGE": exporter, "BODYPOSE_PENDING_CHECK_SECONDS": "3"}


@pytest.fixture
def a100_publish_gate(minio_endpoint: S3Server, s3_bucket: str, namespace: str) -> Iterator[S3Gate]:
    """Holds the first upload of resource `faults`' a100 build (not its write probe): the
    build's work is done and it is publishing, so a kill then is certainly mid-run."""
    pattern = (rf"(?:PUT|POST) /{s3_bucket}/artifacts/{namespace}/faults/\S+/targets/a100/"
               rf"(?!\.bodypose-write-probe)").encode()  # fmt: skip
    held = S3Gate(minio_endpoint, pattern)
    try:
        yield held
    finally:
        held.close()


def test_kills_of_the_operator_and_of_a_build_and_a_build_that_always_fails(
    cluster: LocalCluster,
    namespace: str,
    a100_publish_gate: S3Gate,
    s3_bucket: str,
    sample_dir: Path,
    tmp_path: Path,
    operator_env: dict[str, str],
) -> None:
    install_crd(cluster.api_client())
    # Everyone (operator, Jobs, this test) reaches MinIO through the gate.
    scene = Scene(cluster, namespace, a100_publish_gate.server, s3_bucket)
    scene.prepare(sample_dir)
    ops: list[OperatorProcess] = []

    def start() -> OperatorProcess:
        log = tmp_path / f"operator-{len(ops)}.log"
        ops.append(start_operator(cluster.kubeconfig, log, operator_env, (namespace,)))
        return ops[-1]

    start()
    try:
        three = [target("a100"), target("cpu"), target("t4", "tensorrt")]
        scene.apply(manifest("faults", s3_bucket, three))
        scene.apply(
            manifest("respec", s3_bucket, [target("cpu")], input={"height": 288, "width": 384})
        )

        # The operator killed while the builds run: the next one makes no second Job.
        wait_for(lambda: len(scene.jobs("faults", "build")) == 3, 300, "the build Jobs")
        before = {j.metadata.name for j in scene.jobs("faults")}
        ops[-1].stop(kill=True)

        # A build container killed mid-run (SIGKILL, as the OOM killer would), while
        # the gate holds its publish: it cannot have finished first.
        wait_for(a100_publish_gate.held.is_set, 300, "a100's build to publish")
        a100 = container_pids("/targets/a100/")
        assert len(a100) == 1, a100
        os.kill(a100[0], signal.SIGKILL)
        a100_publish_gate.release()
        start()

        # The spec changed while its build runs: the old build Job goes.
        old = wait_for(lambda: scene.jobs("respec", "build"), 300, "respec's build Job")[0]
        # (256x320: content of its own, so nothing of "faults" is reused for it.)
        scene.apply(manifest("respec", s3_bucket, [target("cpu")],
                             input={"height": 256, "width": 320}))  # fmt: skip
        wait_for(lambda: old.metadata.name not in {j.metadata.name for j in scene.jobs("respec")},
                 120, "the old generation's build Job to go")  # fmt: skip

        final = wait_for(lambda: scene.phase("faults", "Failed"), 600, "faults to settle")
        respec = wait_for(lambda: scene.phase("respec", "Ready"), 600, "respec to be Ready")
    finally:
        for op in ops:
            op.stop()
    logs = "\n".join(op.log.read_text() for op in ops)
    assert "Traceback" not in logs, logs[-3000:]

    # No Job lost or duplicated across the kills: the same deterministic names, each
    # created once and never deleted, counted in the API server's requests (a second
    # create of the same name would be a 409, so listing Jobs could not tell).
    assert {j.metadata.name for j in scene.jobs("faults")} == before and len(before) == 4
    writes = job_writes(cluster, namespace)
    assert created(writes, "faults-") == dict.fromkeys(before, 1), writes
    assert not deleted(writes, "faults-"), writes
    # The respec Job of the old generation went once, and its new one was made once.
    assert deleted(writes, "respec-build-") == {old.metadata.name: 1}, writes
    assert all(n == 1 for n in created(writes, "respec-").values()), writes
    targets = {t["name"]: t for t in final["targets"]}
    assert (targets["a100"]["phase"], targets["a100"]["retries"]) == ("Ready", 1)
    assert targets["cpu"]["phase"] == "Ready" and "retries" not in targets["cpu"]
    t4 = targets["t4"]
    assert t4["phase"] == "Failed"
    assert t4["message"].startswith("target t4: --engine_backend tensorrt needs TensorRT")
    # Bad input (exit 2) fails the Job at once (its pod failure policy): no pointless retry.
    assert "retries" not in t4 and "retried" not in t4["message"]
    stalled = scene.condition("faults", "Stalled")
    assert stalled is not None and stalled["reason"] == "BackendUnavailable"
    assert scene.condition("faults", "Reconciling") is None
    assert final["readyTargets"] == "2/3"
    scene.check_published("faults")

    # Only the new generation's artifacts in the status.
    key = respec["contentKey"]
    uris = [a["uri"] for a in respec["artifacts"].values()]
    uris += [t["engineUri"] for t in respec["targets"]]
    assert uris and all(f"/{key}/" in uri for uri in uris), uris
    assert respec["resolution"] == "256x320"
    scene.check_published("respec")
    events = scene.core.list_namespaced_event(
        namespace, field_selector="involvedObject.name=respec"
    ).items
    assert "Superseded" in {e.reason for e in events}


@pytest.fixture
def own_cluster(
    cluster_binaries: dict[str, Path], images: list[BuiltImage], tmp_path: Path
) -> Iterator[LocalCluster]:
    local = LocalCluster(tmp_path / "cluster", cluster_binaries).start()
    for image in images:
        local.load_image(image.archive)
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture
def gate(own_minio: MinioProcess) -> Iterator[S3Gate]:
    """Holds the export's first artifact upload to bucket `infra` until MinIO is dead."""
    held = S3Gate(own_minio.server, rb"(?:PUT|POST) /infra/artifacts/\S+\.(?:etlt|onnx)[? ]")
    try:
        yield held
    finally:
        held.close()


def test_s3_down_during_an_upload_and_the_api_server_restarted(
    own_cluster: LocalCluster,
    own_minio: MinioProcess,
    gate: S3Gate,
    sample_dir: Path,
    tmp_path: Path,
) -> None:
    cluster = own_cluster
    install_crd(cluster.api_client())
    core: Any = client.CoreV1Api(cluster.api_client())
    core.create_namespace({"metadata": {"name": "faults"}})
    wait_for(lambda: core.list_namespaced_service_account("faults").items, 30, "default SA")
    s3 = own_minio.server.client()
    s3.create_bucket(Bucket="infra")
    # Everyone (operator, Jobs, this test's uploads) reaches MinIO through the gate.
    scene = Scene(cluster, "faults", gate.server, "infra")
    scene.prepare(sample_dir)
    operator = start_operator(cluster.kubeconfig, tmp_path / "operator.log", namespaces=("faults",))
    try:
        scene.apply(manifest("infra", "infra", [target("a100"), target("cpu")]))
        wait_for(gate.held.is_set, 300, "the export's first artifact upload")
        found = s3.list_objects_v2(Bucket="infra", Prefix="artifacts/").get("Contents", [])
        own_minio.stop(kill=True)
        gate.release()
        # Down until someone has met the outage (the exporter retrying its upload): then
        # the cut publish has been seen to fail, not merely given time to.
        wait_for(gate.refused.is_set, 120, "a request to S3 while it is down")
        own_minio.start()
        # Held before any manifest: the kill cut the publish, not what followed it.
        assert not any(o["Key"].endswith("/manifest.json") for o in found), found

        wait_for(lambda: scene.jobs("infra", "build"), 400, "the build Jobs")
        cluster.restart("kube-apiserver", down_seconds=5)
        final = wait_for(lambda: scene.phase("infra", "Ready", "Failed"), 600, "infra to settle")
    finally:
        operator.stop()
    log = operator.log.read_text()
    assert final["phase"] == "Ready", json.dumps(final, indent=1) + log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    assert len(scene.jobs("infra", "export")) == 1 and len(scene.jobs("infra", "build")) == 2
    scene.check_published("infra")
    # The export's publish was cut: the Job's retry (or the exporter's own S3 retries)
    # published it whole; nothing names a partial object (check_published).
    export = scene.jobs("infra", "export")[0]
    assert export.status.succeeded == 1


@pytest.fixture
def build_gate(own_minio: MinioProcess) -> Iterator[S3Gate]:
    """Holds the cpu build's first artifact upload to bucket `outage` until MinIO is dead."""
    held = S3Gate(own_minio.server, rb"(?:PUT|POST) /outage/artifacts/\S+/targets/cpu/\S+\.onnx")
    try:
        yield held
    finally:
        held.close()


#: How long S3 stays away: what the issue names ("a minute of S3 outage during a build").
OUTAGE_SECONDS = 60


def test_a_minute_of_s3_outage_during_a_build_is_retried_and_ends_ready(
    cluster: LocalCluster,
    namespace: str,
    own_minio: MinioProcess,
    build_gate: S3Gate,
    sample_dir: Path,
    tmp_path: Path,
) -> None:
    """MinIO killed while the cpu build publishes, and kept down a minute: the build exits
    75 (S3 unreachable) on each attempt meanwhile, the Job controller retries it with
    back-off, the status and a Retrying event say each attempt and why, and once S3 is back
    the target is Ready; no Job deleted by hand, none made twice.

    The session's cluster and a fresh namespace: only MinIO is stopped here (the test's
    own), so no cluster of its own is needed (one less control plane started and the
    images loaded again, a minute of the suite)."""
    install_crd(cluster.api_client())
    core: Any = client.CoreV1Api(cluster.api_client())
    own_minio.server.client().create_bucket(Bucket="outage")
    scene = Scene(cluster, namespace, build_gate.server, "outage")
    scene.prepare(sample_dir)
    operator = start_operator(
        cluster.kubeconfig, tmp_path / "operator.log", namespaces=(namespace,)
    )
    try:
        scene.apply(manifest("outage", "outage", [target("cpu")]))
        wait_for(build_gate.held.is_set, 600, "the cpu build's first artifact upload")
        own_minio.stop(kill=True)
        down = time.monotonic()
        build_gate.release()
        wait_for(build_gate.refused.is_set, 120, "a request to S3 while it is down")
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down)))
        own_minio.start()
        final = wait_for(lambda: scene.phase("outage", "Ready", "Failed"), 900, "outage to settle")
    finally:
        operator.stop()
    log = operator.log.read_text()
    assert final["phase"] == "Ready", json.dumps(final, indent=1) + log[-3000:]
    cpu = final["targets"][0]
    assert cpu["phase"] == "Ready" and cpu["retries"] >= 1, cpu
    assert cpu["lastFailure"].startswith("S3Unreachable: "), cpu
    events = core.list_namespaced_event(
        namespace, field_selector="involvedObject.kind=BodyPoseExport,involvedObject.name=outage"
    ).items
    retrying = [e.message for e in events if e.reason == "Retrying"]
    assert retrying and all("S3Unreachable" in m for m in retrying), retrying
    (build,) = scene.jobs("outage", "build")
    assert build.status.succeeded == 1 and build.status.failed == cpu["retries"]
    scene.check_published("outage")
