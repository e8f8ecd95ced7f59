"""The status follows the spec as it is now: edits of a Ready or a failed target, pass by pass.

Each test edits or breaks something after the resource settled and checks the
controller's promise (DESIGN.md, "Convergence"): a target is Ready only on an
artifact recorded for its identity now (backend, pool, backend options, build
image); any change of a failed target replaces its failed Job and clears
Stalled; a Job made for an earlier spec of a target is deleted, never reported.
The in-memory cluster pins the Jobs pass by pass; S3 is the real MinIO.
The same promise on the real cluster, under random edits and faults:
tests/e2e/test_convergence.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from kubernetes.client import V1ContainerState, V1JobStatus, V1PodCondition

from bodypose_operator.builders.naming import LABEL_IDENTITY
from bodypose_operator.controller.reconcile import reconcile
from bodypose_operator.settings import Settings
from tests.conftest import S3Endpoint
from tests.support.operator_fakes import (
    RecordedCluster,
    body,
    cond,
    pod,
    put_manifest,
    put_target_manifest,
    target_folder,
)

CPU = {"name": "cpu", "backend": "onnxruntime", "nodeSelector": {"bodypose.dev/pool": "cpu"}}


def _resource(bucket: str, *targets: dict[str, Any]) -> dict[str, Any]:
    return body(bucket, targets=list(targets))


def _ready(bucket: str, s3: S3Endpoint, cluster: RecordedCluster, resource: dict[str, Any]) -> str:
    """The resource taken to Ready (export and every target built); its prefix."""
    settings = Settings(pending_check_seconds=0)
    first = reconcile(resource, cluster, settings)  # type: ignore[arg-type]
    prefix = f"s3://{bucket}/out/ml/demo/{first.status['contentKey']}"
    put_manifest(s3, f"{prefix}/manifest.json", {"artifacts": []})
    building = reconcile(resource, cluster, settings)  # type: ignore[arg-type]
    for target in building.status["targets"]:
        # Where its Job would publish: the folder of the identity the operator computed.
        folder = f"{prefix}/targets/{target['name']}/{target['identity']}"
        put_manifest(s3, f"{folder}/manifest.json", {
            "artifacts": [{"kind": "engine", "path": f"{folder}/e.onnx", "sha256": "ab",
                           "bytes": 3}],
            "targetIdentity": target["identity"],
        })  # fmt: skip
    ready = reconcile(resource, cluster, settings)  # type: ignore[arg-type]
    assert ready.status["phase"] == "Ready"
    resource["status"] = ready.status
    return prefix


def _building(
    bucket: str, s3: S3Endpoint, cluster: RecordedCluster, resource: dict[str, Any]
) -> str:
    """The resource past its export, its build Jobs made; its prefix."""
    settings = Settings(pending_check_seconds=0)
    first = reconcile(resource, cluster, settings)  # type: ignore[arg-type]
    prefix = f"s3://{bucket}/out/ml/demo/{first.status['contentKey']}"
    put_manifest(s3, f"{prefix}/manifest.json", {"artifacts": []})
    reconcile(resource, cluster, settings)  # type: ignore[arg-type]
    return prefix


def _edit(resource: dict[str, Any], **target: Any) -> dict[str, Any]:
    """The resource with its first target changed, one generation on."""
    edited = {**resource, "metadata": {**resource["metadata"]}, "spec": {**resource["spec"]}}
    edited["spec"]["targets"] = [{**resource["spec"]["targets"][0], **target}]
    edited["metadata"]["generation"] = int(resource["metadata"].get("generation", 1)) + 1
    return edited


def test_a_ready_target_moved_to_another_pool_builds_there_and_never_reports_the_old_artifact(
    bucket: str, s3_endpoint: S3Endpoint
) -> None:
    cluster, settings = RecordedCluster(), Settings(pending_check_seconds=0)
    resource = _resource(bucket, CPU)
    prefix = _ready(bucket, s3_endpoint, cluster, resource)
    old_engine = resource["status"]["targets"][0]["engineUri"]
    old_identity = resource["status"]["targets"][0]["identity"]

    moved = _edit(resource, nodeSelector={"bodypose.dev/pool": "cpu-large"})
    out = reconcile(moved, cluster, settings)  # type: ignore[arg-type]
    target = out.status["targets"][0]
    assert target["phase"] == "Pending" and "engineUri" not in target
    assert target["identity"] != old_identity
    assert out.status["phase"] == "Building"
    assert out.status["observedGeneration"] == moved["metadata"]["generation"]
    assert cond(out.status, "Ready")["status"] == "False"
    job = cluster.jobs[target["jobName"]]
    assert job.metadata.labels[LABEL_IDENTITY] == target["identity"]
    pod_spec = cluster.manifests[target["jobName"]]["spec"]["template"]["spec"]
    assert pod_spec["nodeSelector"] == {"bodypose.dev/pool": "cpu-large"}
    args = pod_spec["containers"][0]["args"]
    engine = args[args.index("--engine_file") + 1]
    assert engine.startswith(f"{target_folder(prefix, moved, 'cpu')}/")
    assert args[args.index("--target_identity") + 1] == target["identity"]

    # Built there: Ready on the new artifact, not the old one.
    put_target_manifest(s3_endpoint, prefix, moved, "cpu", {
        "artifacts": [{"kind": "engine", "path": engine, "sha256": "cd", "bytes": 4}],
    })  # fmt: skip
    job.status = V1JobStatus(succeeded=1)
    done = reconcile(moved, cluster, settings)  # type: ignore[arg-type]
    assert done.status["phase"] == "Ready"
    assert done.status["targets"][0]["engineUri"] == engine != old_engine

    # Moved back: the first pool's artifact is its own again, no Job needed.
    back = _edit(moved, nodeSelector=CPU["nodeSelector"])
    jobs = set(cluster.jobs)
    again = reconcile(back, cluster, settings)  # type: ignore[arg-type]
    assert again.status["phase"] == "Ready" and set(cluster.jobs) == jobs
    assert again.status["targets"][0]["engineUri"] == old_engine


def test_an_artifact_recording_another_identity_is_not_taken(
    bucket: str, s3_endpoint: S3Endpoint
) -> None:
    """An artifact found where the target looks, recorded for another identity (or for
    none: published before identities), is not the target's: a build is started."""
    cluster, settings = RecordedCluster(), Settings(pending_check_seconds=0)
    resource = _resource(bucket, CPU)
    first = reconcile(resource, cluster, settings)  # type: ignore[arg-type]
    prefix = f"s3://{bucket}/out/ml/demo/{first.status['contentKey']}"
    put_manifest(s3_endpoint, f"{prefix}/manifest.json", {"artifacts": []})
    folder = target_folder(prefix, resource, "cpu")
    put_manifest(s3_endpoint, f"{folder}/manifest.json",
                 {"artifacts": [], "targetIdentity": "0" * 16})  # fmt: skip
    out = reconcile(resource, cluster, settings)  # type: ignore[arg-type]
    assert out.status["targets"][0]["phase"] == "Pending"
    started = [e.message for e in out.events if e.reason == "BuildStarted"]
    assert len(started) == 1 and "recorded for identity 0000000000000000" in started[0]


def test_a_backend_or_option_change_builds_under_a_new_identity(
    bucket: str, s3_endpoint: S3Endpoint
) -> None:
    cluster, settings = RecordedCluster(), Settings(pending_check_seconds=0)
    rtx = {"name": "l4", "backend": "tensorrt-rtx", "computeCapabilities": ["8.9"]}
    resource = _resource(bucket, rtx)
    _ready(bucket, s3_endpoint, cluster, resource)
    before = resource["status"]["targets"][0]["identity"]
    for change in ({"computeCapabilities": ["8.6"]}, {"backend": "onnxruntime"}):
        edited = _edit(resource, **change)
        if change.get("backend") == "onnxruntime":
            del edited["spec"]["targets"][0]["computeCapabilities"]
        out = reconcile(edited, cluster, settings)  # type: ignore[arg-type]
        target = out.status["targets"][0]
        assert target["phase"] == "Pending" and target["identity"] != before, change
        assert "engineUri" not in target


RTX_VERSION = "1.7.1.116"


def _rtx_built(s3: S3Endpoint, prefix: str, resource: dict[str, Any], capability: str) -> str:
    """The l4 target's TensorRT-RTX engine published for `capability`, with its record as
    the exporter writes it (`compatibility`); the engine's URI."""
    engine = f"{target_folder(prefix, resource, 'l4')}/e.sm{capability.replace('.', '')}.engine"
    put_target_manifest(s3, prefix, resource, "l4", {
        "artifacts": [{"kind": "engine", "path": engine, "sha256": "ab", "bytes": 3}],
        "hardware": {"tensorrtRtxVersion": RTX_VERSION, "cpuModel": "x86"},
        "compatibility": {"computeCapabilities": capability, "tensorrtRtxVersion": RTX_VERSION},
    })  # fmt: skip
    return engine


def test_a_backends_own_record_is_in_its_map_and_follows_a_rebuild_for_other_gpus(
    bucket: str, s3_endpoint: S3Endpoint
) -> None:
    """tensorrt-rtx's own record (the compute capabilities, the TensorRT-RTX version) is in
    the target's `backendStatus` map and nowhere else in its status. Edited to build for
    another capability, the target is not Ready on the engine built for the old one (its
    map goes with it), and once rebuilt the map is the new engine's."""
    cluster, settings = RecordedCluster(), Settings(pending_check_seconds=0)
    resource = _resource(bucket, {"name": "l4", "backend": "tensorrt-rtx",
                                  "computeCapabilities": ["8.9"]})  # fmt: skip
    prefix = _building(bucket, s3_endpoint, cluster, resource)
    old_engine = _rtx_built(s3_endpoint, prefix, resource, "8.9")
    ready = reconcile(resource, cluster, settings)  # type: ignore[arg-type]
    l4 = ready.status["targets"][0]
    assert (l4["phase"], l4["engineUri"]) == ("Ready", old_engine)
    assert l4["backendStatus"] == {"computeCapabilities": "8.9", "tensorrtRtxVersion": RTX_VERSION}
    assert not {"computeCapabilities", "tensorrtRtxVersion", "cpuModel"} & set(l4)
    resource["status"] = ready.status

    edited = _edit(resource, computeCapabilities=["8.6"])
    out = reconcile(edited, cluster, settings)  # type: ignore[arg-type]
    l4 = out.status["targets"][0]
    assert l4["phase"] == "Pending" and "engineUri" not in l4 and "backendStatus" not in l4
    new_engine = _rtx_built(s3_endpoint, prefix, edited, "8.6")
    cluster.jobs[l4["jobName"]].status = V1JobStatus(succeeded=1)
    done = reconcile(edited, cluster, settings)  # type: ignore[arg-type]
    l4 = done.status["targets"][0]
    assert (l4["phase"], l4["engineUri"]) == ("Ready", new_engine)
    assert l4["backendStatus"] == {"computeCapabilities": "8.6", "tensorrtRtxVersion": RTX_VERSION}


def test_a_failed_target_is_replaced_by_any_edit_of_it_and_stalled_clears(
    bucket: str, s3_endpoint: S3Endpoint
) -> None:
    """A target whose build failed (here: its Job failed for good) is Stalled; fixing its
    spec, even a scheduling field only, replaces the failed Job: no `kubectl delete job`."""
    cluster, settings = RecordedCluster(), Settings(pending_check_seconds=0)
    resource = _resource(bucket, {**CPU, "resources": {"limits": {"memory": "1Gi"}}})
    first = reconcile(resource, cluster, settings)  # type: ignore[arg-type]
    prefix = f"s3://{bucket}/out/ml/demo/{first.status['contentKey']}"
    put_manifest(s3_endpoint, f"{prefix}/manifest.json", {"artifacts": []})
    reconcile(resource, cluster, settings)  # type: ignore[arg-type]
    failed = cluster.job("build", "cpu")
    cluster.fail(failed, {"ok": False, "reason": "OOMKilled", "message": "out of memory"})
    stalled = reconcile(resource, cluster, settings)  # type: ignore[arg-type]
    assert stalled.status["phase"] == "Failed"
    assert cond(stalled.status, "Stalled")["status"] == "True"
    resource["status"] = stalled.status

    # Memory raised: a scheduling field, not the artifact's identity.
    raised = _edit(resource, resources={"limits": {"memory": "8Gi"}})
    out = reconcile(raised, cluster, settings)  # type: ignore[arg-type]
    assert out.status["targets"][0]["identity"] == stalled.status["targets"][0]["identity"]
    assert failed.metadata.name in out.delete and failed.metadata.name in cluster.deleted
    superseded = [e.message for e in out.events if e.reason == "Superseded"]
    assert superseded == [f"deleted failed Job {failed.metadata.name}: it was made for an "
                          "earlier spec"]  # fmt: skip
    [new] = out.create
    assert new["metadata"]["name"] != failed.metadata.name
    # (and the backend's CPU, request = limit: builders.jobs.target_resources)
    assert new["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] == {
        "memory": "8Gi", "cpu": "1"
    }  # fmt: skip
    assert out.status["phase"] == "Building"
    # Failed -> Building is told by what the pass did, each fact once.
    assert [e.reason for e in out.events] == ["Superseded", "BuildStarted"]
    types = {c["type"] for c in out.status["conditions"]}
    assert "Stalled" not in types and cond(out.status, "Reconciling")["status"] == "True"


def test_a_failed_target_stays_failed_until_its_spec_changes(
    bucket: str, s3_endpoint: S3Endpoint
) -> None:
    """A deterministic failure never retries by itself: the same spec, pass after pass,
    keeps the failed Job and makes no other; an edit of another target leaves it too."""
    cluster, settings = RecordedCluster(), Settings(pending_check_seconds=0)
    other = {"name": "t4", "backend": "onnxruntime", "nodeSelector": {"bodypose.dev/pool": "t4"}}
    resource = _resource(bucket, CPU, other)
    _building(bucket, s3_endpoint, cluster, resource)
    failed = cluster.job("build", "cpu")
    cluster.fail(failed, {"ok": False, "reason": "VerificationFailed", "message": "cosine 0.5"})
    for _ in range(2):
        out = reconcile(resource, cluster, settings)  # type: ignore[arg-type]
        assert out.create == [] and out.delete == []
    edited = {**resource, "spec": {**resource["spec"]}}
    edited["spec"]["targets"] = [CPU, {**other, "tolerations": [{"operator": "Exists"}]}]
    out = reconcile(edited, cluster, settings)  # type: ignore[arg-type]
    assert failed.metadata.name not in out.delete
    assert [j["metadata"]["labels"]["bodypose.dev/target"] for j in out.create] == ["t4"]


def test_a_removed_or_renamed_target_has_its_running_job_deleted(
    bucket: str, s3_endpoint: S3Endpoint
) -> None:
    cluster, settings = RecordedCluster(), Settings(pending_check_seconds=0)
    other = {"name": "t4", "backend": "onnxruntime", "nodeSelector": {"bodypose.dev/pool": "t4"}}
    resource = _resource(bucket, CPU, other)
    _building(bucket, s3_endpoint, cluster, resource)
    t4 = cluster.job("build", "t4")
    t4.status = V1JobStatus(active=1, ready=1)
    renamed = {**resource, "spec": {**resource["spec"], "targets": [CPU, {**other, "name": "g"}]}}
    out = reconcile(renamed, cluster, settings)  # type: ignore[arg-type]
    assert t4.metadata.name in out.delete
    assert [t["name"] for t in out.status["targets"]] == ["cpu", "g"]
    assert [j["metadata"]["labels"]["bodypose.dev/target"] for j in out.create] == ["g"]


def test_a_cpu_pools_int8_class_is_read_from_its_nodes_and_a_change_of_them_rebuilds(
    bucket: str, s3_endpoint: S3Endpoint
) -> None:
    """ONNX Runtime int8: the class the pool's nodes agree on (Node Feature Discovery's
    labels) is part of the identity and told to the build; a pool whose nodes come to
    disagree builds the x86 artifact (int7 or uint8 weights) and the status says why."""
    from bodypose_operator.controller.cpu_class import AVX2, AVX512VNNI

    cluster, settings = RecordedCluster(), Settings(pending_check_seconds=0)
    pool = {"bodypose.dev/pool": "cpu", "kubernetes.io/arch": "amd64"}
    cluster.nodes = {"cpu-0": {**pool, AVX512VNNI: "true", AVX2: "true"}}
    resource = body(bucket, precision="int8", calibration={"imagesUri": f"s3://{bucket}/i"},
                    targets=[CPU])  # fmt: skip
    prefix = _ready(bucket, s3_endpoint, cluster, resource)
    target = resource["status"]["targets"][0]
    assert target["int8Class"] == "x86-vnni" and "int8ClassReason" not in target
    [job] = [m for m in cluster.manifests.values() if m["metadata"]["labels"].get(
        "bodypose.dev/target") == "cpu"]  # fmt: skip
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--int8_instruction_set") + 1] == "x86-vnni"

    # A node without VNNI joins the pool: the VNNI artifact is no longer right for it.
    cluster.nodes["cpu-1"] = {**pool, AVX2: "true"}
    out = reconcile(resource, cluster, settings)  # type: ignore[arg-type]
    target = out.status["targets"][0]
    assert target["phase"] == "Pending" and target["int8Class"] == "x86"
    assert "disagree" in target["int8ClassReason"] and "cpu-1" in target["int8ClassReason"]
    assert target["identity"] != resource["status"]["targets"][0]["identity"]
    [new] = out.create
    args = new["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--int8_instruction_set") + 1] == "x86"
    assert prefix in args[args.index("--engine_file") + 1]


def test_s3_away_keeps_what_was_seen_of_the_same_spec_and_says_why(
    bucket: str, s3_endpoint: S3Endpoint, monkeypatch: Any
) -> None:
    """A pass that cannot reach S3 sees neither the key nor the stages: the targets the last
    pass saw of this same spec stay in the status (a blip empties nothing), with Reconciling
    saying S3 is away; once it answers, the status is recomputed from what is there."""
    from tests.conftest import free_port

    cluster, settings = RecordedCluster(), Settings(pending_check_seconds=0)
    resource = _resource(bucket, CPU)
    _ready(bucket, s3_endpoint, cluster, resource)
    seen = resource["status"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    away = reconcile(resource, cluster, settings)  # type: ignore[arg-type]
    assert away.status["targets"] == seen["targets"] and away.status["readyTargets"] == "1/1"
    assert (away.status["phase"], cond(away.status, "Reconciling")["reason"]) == (
        "Pending", "S3Unreachable")  # fmt: skip
    # Another spec: nothing seen of it is kept.
    edited = _edit(resource, nodeSelector={"bodypose.dev/pool": "elsewhere"})
    other = reconcile(edited, cluster, settings)  # type: ignore[arg-type]
    assert "targets" not in other.status and other.status["readyTargets"] == "0/1"


def test_a_new_latency_budget_rebuilds_nothing_ready_and_a_running_build_takes_it(
    bucket: str, s3_endpoint: S3Endpoint
) -> None:
    """The operator's jobs.latencyBudgetSeconds is how long a build times its engine, not
    what the engine is: after the operator is configured anew, a Ready target stays Ready
    on its artifact with no Job made, and a build still running is replaced by one that
    times with the new budget (a Job belongs to the spec it was made for)."""
    cluster = RecordedCluster()
    resource = _resource(bucket, CPU)
    _ready(bucket, s3_endpoint, cluster, resource)
    cluster.job("build", "cpu").status = V1JobStatus(succeeded=1)
    engine = resource["status"]["targets"][0]["engineUri"]
    brief = Settings(pending_check_seconds=0, latency_budget_seconds=2.0)
    out = reconcile(resource, cluster, brief)  # type: ignore[arg-type]
    assert out.status["phase"] == "Ready" and out.create == [] and out.delete == []
    assert out.status["targets"][0]["engineUri"] == engine

    building = RecordedCluster()
    other = _resource(bucket, {**CPU, "nodeSelector": {"bodypose.dev/pool": "cpu-large"}})
    _building(bucket, s3_endpoint, building, other)
    running = building.job("build", "cpu")
    args = building.manifests[running.metadata.name]["spec"]["template"]["spec"]
    assert "--latency_budget" not in args["containers"][0]["args"]
    out = reconcile(other, building, brief)  # type: ignore[arg-type]
    assert out.delete == [running.metadata.name]
    [new] = out.create
    new_args = new["spec"]["template"]["spec"]["containers"][0]["args"]
    assert new_args[new_args.index("--latency_budget") + 1] == "2"
    # The same artifact is asked for: the budget is not part of what it is.
    assert new["metadata"]["labels"][LABEL_IDENTITY] == running.metadata.labels[LABEL_IDENTITY]
    assert out.status["targets"][0]["jobName"] == new["metadata"]["name"]


def test_a_retry_whose_pod_no_node_can_run_fails_its_target_without_a_job_event(
    bucket: str, s3_endpoint: S3Endpoint
) -> None:
    """`make soak SEED=120710` step 29: a target Failed on an unschedulable pod; the pod
    deleted, the Job made another (failed 2), the pass of that event read the new pod
    before the scheduler had marked it, said "running", and no Job event came after: the
    status said running until the safety resync. Now such a retry is looked at again
    every pendingCheckSeconds until it starts, ends or fails its target, and a Failed
    target's Job asks for no look."""
    settings = Settings(pending_check_seconds=3, pending_deadline_seconds=20)
    cluster = RecordedCluster()
    resource = _resource(bucket, CPU)
    _building(bucket, s3_endpoint, cluster, resource)
    job = cluster.job("build", "cpu")
    started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=60)
    job.status = V1JobStatus(active=1, failed=2, start_time=started)
    cluster.pods[job.metadata.name] = [pod(V1ContainerState())]  # not yet scheduled, nor refused
    out = reconcile(resource, cluster, settings)  # type: ignore[arg-type]
    assert out.status["targets"][0]["phase"] == "Building"
    assert out.requeue_after == 3

    cluster.pods[job.metadata.name] = [
        pod(V1ContainerState(), [V1PodCondition(
            type="PodScheduled", status="False", reason="Unschedulable",
            message="0/6 nodes are available: 1 Insufficient nvidia.com/gpu")])
    ]  # fmt: skip
    looked = reconcile(resource, cluster, settings)  # type: ignore[arg-type]
    target = looked.status["targets"][0]
    assert target["phase"] == "Failed" and "Insufficient nvidia.com/gpu" in target["message"]
    assert cond(looked.status, "Ready")["reason"] == "NoMatchingNodes"
    assert looked.requeue_after is None
