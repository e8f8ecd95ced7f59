"""The reconcile pass against a real S3 server, with an in-memory record of Jobs.

Most tests look at a Job's pods the moment they are attached
(`pending_check_seconds=0`: the check of a Job that has not started is due);
the scheduling of that check is tested on its own at the end.

The Kubernetes side here is a plain list of kubernetes-client objects standing
in for the API server, to pin the decisions (which Job, which status) one by
one; the end-to-end test on the real control plane checks the same flow live.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from kubernetes.client import (
    V1ContainerState,
    V1ContainerStateTerminated,
    V1ContainerStateWaiting,
    V1JobStatus,
    V1PodCondition,
)

from bodypose_operator.builders.naming import LABEL_STAGE, LABEL_TARGET
from bodypose_operator.controller import pods
from bodypose_operator.controller.reconcile import reconcile
from bodypose_operator.settings import Settings
from tests.conftest import S3Endpoint
from tests.support.operator_fakes import (
    GPU_IMAGE,
    RecordedCluster,
    body,
    cond,
    pod,
    pod_running,
    put_artifact,
    put_manifest,
    put_target_manifest,
    target_folder,
)


def test_flow_export_then_builds_then_ready_and_reuse(bucket: str, s3_endpoint: S3Endpoint) -> None:
    cluster, settings = RecordedCluster(), Settings(pending_check_seconds=0)
    first = reconcile(body(bucket), cluster, settings)  # type: ignore[arg-type]
    assert first.status["phase"] == "Exporting"
    # One event says the Job was made; the phase it starts is not said twice.
    assert [e.reason for e in first.events] == ["ExportStarted"]
    assert [j.metadata.labels[LABEL_STAGE] for j in cluster.jobs.values()] == ["export"]
    assert cond(first.status, "Ready")["status"] == "False"
    prefix = f"s3://{bucket}/out/ml/demo/{first.status['contentKey']}"

    # A second pass makes no second Job (deterministic names, create-if-absent).
    reconcile(body(bucket), cluster, settings)  # type: ignore[arg-type]
    assert len(cluster.jobs) == 1

    put_manifest(s3_endpoint, f"{prefix}/manifest.json", {"artifacts": [
        {"kind": "etlt", "path": f"{prefix}/bpnet_model.etlt", "sha256": "ab", "bytes": 5},
    ]})  # fmt: skip
    building = reconcile(body(bucket), cluster, settings)  # type: ignore[arg-type]
    assert building.status["phase"] == "Building"
    assert building.status["artifacts"]["etlt"]["sha256"] == "ab"
    assert "Exported" in [e.reason for e in building.events]
    # The export is seen complete once: one Exported event (its stage metric goes with it).
    assert [e.reason for e in building.events].count("Exported") == 1
    assert {j.metadata.labels.get(LABEL_TARGET) for j in cluster.jobs.values()} == {
        None,
        "a100",
        "cpu",
    }
    for target in ("a100", "cpu"):
        put_target_manifest(s3_endpoint, prefix, body("any"), target, {
            "artifacts": [{"kind": "engine", "path": f"{prefix}/targets/{target}/e",
                           "sha256": "cd", "bytes": 7}],
            "hardware": {"gpuName": "NVIDIA A100", "computeCapability": "8.0"},
            "compatibility": {"computeCapability": "8.0", "tensorrtVersion": "10.8.0.43",
                              "hardwareCompatibility": "none"},
            "runtime": "TensorRT (a serialized engine, a plan)",
            "serving": {"tritonRepository": f"{prefix}/targets/{target}/triton",
                        "tritonModel": "bpnet",
                        "tritonConfig": f"{prefix}/targets/{target}/triton/bpnet/config.pbtxt",
                        "deepstreamConfig":
                            f"{prefix}/targets/{target}/bodypose2d_pgie_config.txt"},
            "timingsSeconds": {"build": 12.5},
            "verification": {"figures": {"cosine": 0.999}},
        })  # fmt: skip
    ready = reconcile(body(bucket), cluster, settings)  # type: ignore[arg-type]
    assert ready.status["phase"] == "Ready"
    assert ready.status["readyTargets"] == "2/2"
    built = [e.message for e in ready.events if e.reason == "Built"]
    assert built[0] == "target a100: engine verified and published in 12s"
    assert len(built) == 2  # each target seen complete once
    assert [e.reason for e in ready.events][-1] == "Ready"  # the end is always announced
    assert cond(ready.status, "Ready")["status"] == "True"
    a100 = ready.status["targets"][0]
    assert (a100["engineUri"], a100["gpuName"], a100["buildSeconds"]) == (
        f"{prefix}/targets/a100/e",
        "NVIDIA A100",
        12.5,
    )
    # The compatibility record, what loads it, and the serving configs beside it.
    assert (a100["tensorrtVersion"], a100["hardwareCompatibility"]) == ("10.8.0.43", "none")
    assert a100["runtime"].startswith("TensorRT")
    assert a100["serving"] == {
        "tritonRepository": f"{prefix}/targets/a100/triton",
        "tritonConfig": f"{prefix}/targets/a100/triton/bpnet/config.pbtxt",
        "deepstreamConfig": f"{prefix}/targets/a100/bodypose2d_pgie_config.txt",
    }

    # Another resource with the same content reuses everything: no Job at all.
    fresh = RecordedCluster()
    again = reconcile(body(bucket), fresh, settings)  # type: ignore[arg-type]
    assert again.status["phase"] == "Ready" and fresh.jobs == {}


def exported(
    resource: dict[str, Any],
    cluster: RecordedCluster,
    settings: Settings,
    s3_endpoint: S3Endpoint,
    bucket: str,
) -> str:
    """Reconcile `resource` through a finished export (its manifest written where the
    export Job would), so its build Jobs exist: the artifact set's prefix."""
    first = reconcile(resource, cluster, settings)  # type: ignore[arg-type]
    prefix = f"s3://{bucket}/out/ml/demo/{first.status['contentKey']}"
    put_manifest(s3_endpoint, f"{prefix}/manifest.json", {"artifacts": [
        {"kind": "etlt", "path": f"{prefix}/bpnet_model.etlt", "sha256": "ab", "bytes": 5},
    ]})  # fmt: skip
    reconcile(resource, cluster, settings)  # type: ignore[arg-type]
    return prefix


def test_an_engine_built_and_not_run_is_never_called_verified(
    bucket: str, s3_endpoint: S3Endpoint
) -> None:
    """A TensorRT-RTX engine its build pod could not run: its event, the Built and Ready
    conditions and its status say built and not run, and why; the engine that ran (ONNX
    Runtime's) is still called verified."""
    cluster, settings = RecordedCluster(), Settings(pending_check_seconds=0)
    resource = body(bucket, targets=[
        {"name": "l4", "backend": "tensorrt-rtx", "computeCapabilities": ["8.9"]},
        {"name": "cpu", "backend": "onnxruntime"},
    ])  # fmt: skip
    prefix = exported(resource, cluster, settings, s3_endpoint, bucket)
    reason = ("no GPU in this pod: the CUDA driver library libcuda.so.1 cannot be loaded "
              "(libcuda.so.1: cannot open shared object file: No such file or directory); "
              "TensorRT-RTX built the engine ahead of time for 8.9, nothing ran it")  # fmt: skip
    not_run = {"precision": "fp32", "figures": {}, "gates": {}, "run": False,
               "outcome": "built, not run", "notRunReason": reason}  # fmt: skip
    ran = {"precision": "fp32", "figures": {"cosine": 1.0}, "gates": {"cosine": 0.9999},
           "passed": True, "failures": [], "run": True, "outcome": "verified"}  # fmt: skip
    for target, verification in (("l4", not_run), ("cpu", ran)):
        put_target_manifest(s3_endpoint, prefix, resource, target, {
            "artifacts": [{"kind": "engine", "path": f"{prefix}/targets/{target}/e",
                           "sha256": "cd", "bytes": 7}],
            "timingsSeconds": {"build": 12.5},
            "verification": verification,
        })  # fmt: skip
    ready = reconcile(resource, cluster, settings)  # type: ignore[arg-type]
    assert ready.status["phase"] == "Ready" and ready.status["readyTargets"] == "2/2"
    built = {e.message.split(":")[0]: e.message for e in ready.events if e.reason == "Built"}
    assert built == {
        "target l4": f"target l4: engine built, not run ({reason}) and published in 12s",
        "target cpu": "target cpu: engine verified and published in 12s",
    }
    condition = cond(ready.status, "Ready")
    assert condition["status"] == "True"
    assert condition["message"] == "2/2 targets ready (l4: built, not run)"
    assert cond(ready.status, "Built")["message"] == (
        "every target has an engine; l4 built ahead of time and not run (no GPU of its kind "
        "where it was built: status.targets[].notRun says why)"
    )
    l4 = ready.status["targets"][0]
    assert (l4["name"], l4["notRun"]) == ("l4", reason) and "verification" not in l4
    said = [e.message for e in ready.events] + [c["message"] for c in ready.status["conditions"]]
    assert not [m for m in said if "l4" in m and "verified" in m]


def test_wrong_key_surfaces_as_condition(bucket: str) -> None:
    cluster, settings = RecordedCluster(), Settings(pending_check_seconds=0)
    reconcile(body(bucket), cluster, settings)  # type: ignore[arg-type]
    cluster.fail(cluster.job("export"), {"ok": False, "reason": "WrongKey",
                                         "message": "wrong key for s3://b/m.tlt"})  # fmt: skip
    out = reconcile(body(bucket), cluster, settings)  # type: ignore[arg-type]
    assert out.status["phase"] == "Failed"
    ready = cond(out.status, "Ready")
    assert (ready["reason"], ready["status"]) == ("WrongKey", "False")
    assert "wrong key" in ready["message"]
    assert cond(out.status, "Exported")["reason"] == "WrongKey"
    assert ("Warning", "Failed") in [(e.type, e.reason) for e in out.events]


def test_missing_key_secret_surfaces_as_condition(bucket: str) -> None:
    cluster, settings = RecordedCluster(), Settings(pending_check_seconds=0)
    reconcile(body(bucket), cluster, settings)  # type: ignore[arg-type]
    job = cluster.job("export")
    cluster.pods[job.metadata.name] = [
        pod(V1ContainerState(waiting=V1ContainerStateWaiting(
            reason="CreateContainerConfigError", message='secret "k" not found')))
    ]  # fmt: skip
    out = reconcile(body(bucket), cluster, settings)  # type: ignore[arg-type]
    ready = cond(out.status, "Ready")
    assert ready["reason"] == "ConfigError" and 'secret "k" not found' in ready["message"]


def test_missing_model_object(s3_bucket: str) -> None:
    out = reconcile(body(s3_bucket), RecordedCluster(), Settings(pending_check_seconds=0))  # type: ignore[arg-type]
    ready = cond(out.status, "Ready")
    assert ready["reason"] == "ModelNotFound"
    assert f"s3://{s3_bucket}/models/m.tlt does not exist" in ready["message"]


def test_invalid_spec_is_reported_not_raised(bucket: str) -> None:
    out = reconcile(
        body(bucket, precision="int8"), RecordedCluster(), Settings(pending_check_seconds=0)
    )  # type: ignore[arg-type]
    ready = cond(out.status, "Ready")
    assert ready["reason"] == "InvalidSpec"
    assert "int8 needs a calibration source" in ready["message"]


def test_spec_change_supersedes_running_jobs(bucket: str) -> None:
    cluster, settings = RecordedCluster(), Settings(pending_check_seconds=0)
    reconcile(body(bucket), cluster, settings)  # type: ignore[arg-type]
    old = cluster.job("export").metadata.name
    changed = body(bucket, input={"height": 288, "width": 384})
    changed["metadata"]["generation"] = 4
    out = reconcile(changed, cluster, settings)  # type: ignore[arg-type]
    assert cluster.deleted == [old]
    assert cluster.job("export").metadata.name != old
    assert out.status["observedGeneration"] == 4


def test_unschedulable_build_fails_after_the_deadline(bucket: str, s3_endpoint: S3Endpoint) -> None:
    cluster, settings = (
        RecordedCluster(),
        Settings(pending_check_seconds=0, pending_deadline_seconds=0),
    )
    first = reconcile(body(bucket), cluster, settings)  # type: ignore[arg-type]
    prefix = f"s3://{bucket}/out/ml/demo/{first.status['contentKey']}"
    put_manifest(s3_endpoint, f"{prefix}/manifest.json", {"artifacts": []})
    reconcile(body(bucket), cluster, settings)  # type: ignore[arg-type]
    job = cluster.job("build", "a100")
    job.metadata.creation_timestamp -= dt.timedelta(seconds=5)
    cluster.pods[job.metadata.name] = [
        pod(V1ContainerState(), [V1PodCondition(
            type="PodScheduled", status="False", reason="Unschedulable",
            message="0/3 nodes are available: 3 node(s) didn't match node selector")])
    ]  # fmt: skip
    out = reconcile(body(bucket), cluster, settings)  # type: ignore[arg-type]
    a100 = out.status["targets"][0]
    assert a100["phase"] == "Failed"
    assert "didn't match node selector" in a100["message"]
    assert cond(out.status, "Ready")["reason"] == "NoMatchingNodes"


def _complete(endpoint: S3Endpoint, prefix: str, targets: tuple[str, ...]) -> None:
    """The export and these targets published, their artifacts really there."""
    put_manifest(endpoint, f"{prefix}/manifest.json", {"artifacts": [
        put_artifact(endpoint, "etlt", f"{prefix}/bpnet_model.etlt", b"etlt!"),
    ]})  # fmt: skip
    for target in targets:
        folder = target_folder(prefix, body("any"), target)
        put_target_manifest(endpoint, prefix, body("any"), target, {"artifacts": [
            put_artifact(endpoint, "engine", f"{folder}/e", f"engine {target}".encode()),
        ]})  # fmt: skip


def test_second_resource_with_the_same_content_reuses_through_the_index(
    bucket: str, s3_endpoint: S3Endpoint
) -> None:
    first_cluster, settings = RecordedCluster(), Settings(pending_check_seconds=0)
    first = reconcile(body(bucket), first_cluster, settings)  # type: ignore[arg-type]
    prefix = f"s3://{bucket}/out/ml/demo/{first.status['contentKey']}"
    _complete(s3_endpoint, prefix, ("a100", "cpu"))
    assert reconcile(body(bucket), first_cluster, settings).status["phase"] == "Ready"  # type: ignore[arg-type]

    # Another name, same content; the GPU target is named differently but builds on
    # the same pool, and one new target builds on a pool nobody built for yet.
    other = body(bucket)
    other["metadata"]["name"] = "copy"
    other["spec"]["targets"] = [
        {"name": "gpu-a", "backend": "tensorrt"},  # same pool as a100: no nodeSelector
        {"name": "cpu", "backend": "onnxruntime"},
        {"name": "t4", "backend": "tensorrt", "nodeSelector": {"bodypose.dev/pool": "t4"}},
    ]
    cluster = RecordedCluster()
    out = reconcile(other, cluster, settings)  # type: ignore[arg-type]
    assert out.status["artifacts"]["etlt"]["uri"] == f"{prefix}/bpnet_model.etlt"
    assert out.status["artifacts"]["manifest"]["uri"] == f"{prefix}/manifest.json"
    phases = {t["name"]: t["phase"] for t in out.status["targets"]}
    assert phases == {"gpu-a": "Ready", "cpu": "Ready", "t4": "Pending"}
    # Only the new pool gets a Job, and it reads the first resource's artifacts.
    assert [j.metadata.labels.get(LABEL_TARGET) for j in cluster.jobs.values()] == ["t4"]
    reasons = [(e.reason, e.message) for e in out.events if e.reason == "Reused"]
    assert len(reasons) == 3 and f"reusing {prefix}/manifest.json" in reasons[0][1]
    # The next pass, with that status as the old one, announces nothing again.
    other["status"] = out.status
    again = reconcile(other, cluster, settings)  # type: ignore[arg-type]
    assert [e.reason for e in again.events if e.reason == "Reused"] == []


def test_build_job_of_a_reusing_resource_reads_the_shared_artifacts() -> None:
    from bodypose_operator.api.v1alpha1 import BodyPoseExportSpec
    from bodypose_operator.builders.jobs import build_args

    spec = BodyPoseExportSpec.model_validate(body("bkt")["spec"])
    args = build_args(
        spec, spec.targets[0], "s3://bkt/out/ml/copy/k", "i" * 16, "s3://bkt/out/ml/demo/k"
    )
    flags = dict(zip(args[::2], args[1::2], strict=False))
    assert flags["--onnx"] == "s3://bkt/out/ml/demo/k/bpnet_model.onnx"
    assert flags["--reference"] == "s3://bkt/out/ml/demo/k/reference.npz"
    assert flags["--engine_file"].startswith("s3://bkt/out/ml/copy/k/targets/a100/")


def test_unreachable_s3_endpoint_is_a_pending_condition(
    bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", dead)  # the Secret's endpoint, as the cluster gives it
    out = reconcile(body(bucket), RecordedCluster(), Settings(pending_check_seconds=0))  # type: ignore[arg-type]
    assert out.status["phase"] == "Pending"
    ready = cond(out.status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "S3Unreachable")
    assert f"cannot reach the S3 endpoint for s3://{bucket}/models/m.tlt" in ready["message"]


def test_failed_build_job_fails_its_target_with_the_jobs_reason(
    bucket: str, s3_endpoint: S3Endpoint
) -> None:
    cluster, settings = RecordedCluster(), Settings(pending_check_seconds=0)
    first = reconcile(body(bucket), cluster, settings)  # type: ignore[arg-type]
    prefix = f"s3://{bucket}/out/ml/demo/{first.status['contentKey']}"
    put_manifest(s3_endpoint, f"{prefix}/manifest.json", {"artifacts": []})
    reconcile(body(bucket), cluster, settings)  # type: ignore[arg-type]
    message = "int8 heatmapCosine 0.91 is below its gate 0.98 (--min_cosine)"
    cluster.fail(cluster.job("build", "a100"), {"ok": False, "reason": "VerificationFailed",
                                                 "message": message})  # fmt: skip
    out = reconcile(body(bucket), cluster, settings)  # type: ignore[arg-type]
    a100 = next(t for t in out.status["targets"] if t["name"] == "a100")
    assert a100["phase"] == "Failed" and message in a100["message"]
    # The cpu target still builds: work under way, not Stalled yet.
    assert out.status["phase"] == "Building"
    assert cond(out.status, "Reconciling")["reason"] == "VerificationFailed"
    assert "Stalled" not in {c["type"] for c in out.status["conditions"]}
    assert cond(out.status, "Ready")["message"].endswith("; 1 other target(s) still building")
    # The cpu target's build done: the failure is all that is left.
    put_target_manifest(s3_endpoint, prefix, body("any"), "cpu", {"artifacts": []})
    out = reconcile(body(bucket), cluster, settings)  # type: ignore[arg-type]
    assert out.status["phase"] == "Failed" and out.status["readyTargets"] == "1/2"
    assert cond(out.status, "Stalled")["reason"] == "VerificationFailed"
    assert "Reconciling" not in {c["type"] for c in out.status["conditions"]}
    assert (cond(out.status, "Built")["status"], cond(out.status, "Built")["reason"]) == (
        "False",
        "VerificationFailed",
    )
    assert ("Warning", "Failed") in [(e.type, e.reason) for e in out.events]


def test_a_retried_build_is_reported(bucket: str, s3_endpoint: S3Endpoint) -> None:
    cluster, settings = RecordedCluster(), Settings(pending_check_seconds=0)
    first = reconcile(body(bucket), cluster, settings)  # type: ignore[arg-type]
    prefix = f"s3://{bucket}/out/ml/demo/{first.status['contentKey']}"
    put_manifest(s3_endpoint, f"{prefix}/manifest.json", {"artifacts": []})
    reconcile(body(bucket), cluster, settings)  # type: ignore[arg-type]
    job = cluster.job("build", "cpu")
    job.status = V1JobStatus(failed=1, active=1, ready=1)  # one pod died, the next runs
    # The pod that died: S3 was away (exit 75), its result says so.
    away = json.dumps({"ok": False, "reason": "S3Unreachable",
                       "message": "cannot reach the S3 endpoint"})  # fmt: skip
    died = pod(V1ContainerState(terminated=V1ContainerStateTerminated(exit_code=75,
                                                                      message=away)))  # fmt: skip
    died.status.phase = "Failed"
    cluster.pods[job.metadata.name] = [died]
    resource = body(bucket)
    out = reconcile(resource, cluster, settings)  # type: ignore[arg-type]
    cpu = next(t for t in cond(out.status, "Ready") and out.status["targets"]
               if t["name"] == "cpu")  # fmt: skip
    assert cpu["retries"] == 1
    assert cpu["lastFailure"] == "S3Unreachable: cannot reach the S3 endpoint"
    assert cpu["message"].endswith(
        "running (attempt 1 of 7 failed: S3Unreachable: cannot reach the S3 endpoint; retried)"
    )
    retrying = [e for e in out.events if e.reason == "Retrying"]
    assert [(e.type, e.message) for e in retrying] == [(
        "Warning", "target cpu: attempt 1 of 7 failed (S3Unreachable: cannot reach the S3 "
        "endpoint); the Job retries it with back-off",
    )]  # fmt: skip
    # Told once: the next pass over the same facts says nothing new.
    resource["status"] = out.status
    again = reconcile(resource, cluster, settings)  # type: ignore[arg-type]
    assert [e for e in again.events if e.reason == "Retrying"] == []
    job.status = V1JobStatus(failed=1, succeeded=1)
    put_target_manifest(s3_endpoint, prefix, body("any"), "cpu", {"artifacts": []})
    resource["status"] = again.status
    out = reconcile(resource, cluster, settings)  # type: ignore[arg-type]
    cpu = next(t for t in out.status["targets"] if t["name"] == "cpu")
    # Ready keeps what the status said of the attempt that failed; no pod read for it.
    assert (cpu["phase"], cpu["retries"]) == ("Ready", 1)
    assert cpu["lastFailure"] == "S3Unreachable: cannot reach the S3 endpoint"

    # A Job that failed and then succeeded between two passes (S3 away for the operator
    # too): its failed attempt is read from its pod at the first pass that sees it done.
    fresh = body(bucket)
    told = reconcile(fresh, cluster, settings)  # type: ignore[arg-type]
    cpu = next(t for t in told.status["targets"] if t["name"] == "cpu")
    assert cpu["lastFailure"] == "S3Unreachable: cannot reach the S3 endpoint"
    assert [e.message for e in told.events if e.reason == "Retrying"] == [
        "target cpu: complete after 1 failed attempt, the last (S3Unreachable: cannot reach "
        "the S3 endpoint)"
    ]


NOT_FOUND = (
    "failed to create containerd task: failed to create shim task: OCI runtime create failed: "
    'runc create failed: unable to start container process: exec: "bpnet-build": '
    "executable file not found in $PATH: unknown"
)


def _exported(bucket: str, s3_endpoint: S3Endpoint, settings: Settings) -> RecordedCluster:
    """A cluster past the export stage, with the build Jobs created and the cpu target
    built (so the a100 target's fate is the resource's)."""
    cluster = RecordedCluster()
    first = reconcile(body(bucket), cluster, settings)  # type: ignore[arg-type]
    prefix = f"s3://{bucket}/out/ml/demo/{first.status['contentKey']}"
    put_manifest(s3_endpoint, f"{prefix}/manifest.json", {"artifacts": []})
    reconcile(body(bucket), cluster, settings)  # type: ignore[arg-type]
    put_target_manifest(s3_endpoint, prefix, body("any"), "cpu", {"artifacts": []})
    return cluster


def test_image_pull_failure_is_reported_then_fails_the_target_after_the_deadline(
    bucket: str, s3_endpoint: S3Endpoint
) -> None:
    settings = Settings(pending_check_seconds=0, pending_deadline_seconds=60)
    cluster = _exported(bucket, s3_endpoint, settings)
    job = cluster.job("build", "a100")
    kubelet = f'Back-off pulling image "{GPU_IMAGE}"'
    cluster.pods[job.metadata.name] = [
        pod_running(GPU_IMAGE, V1ContainerState(waiting=V1ContainerStateWaiting(
            reason="ImagePullBackOff", message=kubelet)))
    ]  # fmt: skip
    expected = f"target a100: image {GPU_IMAGE} cannot be pulled (ImagePullBackOff): {kubelet}"

    out = reconcile(body(bucket), cluster, settings)  # type: ignore[arg-type]
    a100 = out.status["targets"][0]
    assert (a100["phase"], a100["message"]) == ("Building", expected)
    assert out.status["phase"] == "Building"

    # The kubelet retries for ever; the operator gives up at the pending deadline.
    job.metadata.creation_timestamp -= dt.timedelta(seconds=61)
    out = reconcile(body(bucket), cluster, settings)  # type: ignore[arg-type]
    a100 = out.status["targets"][0]
    assert (a100["phase"], a100["message"]) == ("Failed", expected)
    assert out.status["phase"] == "Failed"
    ready = cond(out.status, "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False",
        "ImagePullBackOff",
        expected,
    )
    assert cond(out.status, "Built")["reason"] == "ImagePullBackOff"


def test_export_image_that_cannot_be_pulled_keeps_the_export_in_progress(bucket: str) -> None:
    image = "registry.example/bpe/tao-deploy-exporter:5.5"
    cluster, settings = RecordedCluster(), Settings(pending_check_seconds=0, export_image=image)
    reconcile(body(bucket), cluster, settings)  # type: ignore[arg-type]
    kubelet = (
        f'failed to pull and unpack image "{image}": failed to resolve reference "{image}": '
        "pull access denied, repository does not exist or may require authorization: "
        "authorization failed: no basic auth credentials"
    )
    cluster.pods[cluster.job("export").metadata.name] = [
        pod_running(image, V1ContainerState(waiting=V1ContainerStateWaiting(
            reason="ErrImagePull", message=kubelet)))
    ]  # fmt: skip
    out = reconcile(body(bucket), cluster, settings)  # type: ignore[arg-type]
    expected = f"export: image {image} cannot be pulled (ErrImagePull): {kubelet}"
    assert out.status["phase"] == "Exporting"
    exported = cond(out.status, "Exported")
    assert (exported["status"], exported["reason"], exported["message"]) == (
        "Unknown",
        "ErrImagePull",
        expected,
    )
    assert cond(out.status, "Ready")["message"] == expected


def test_container_that_cannot_start_fails_its_target_at_once(
    bucket: str, s3_endpoint: S3Endpoint
) -> None:
    cluster, settings = (
        _exported(bucket, s3_endpoint, Settings(pending_check_seconds=0)),
        Settings(pending_check_seconds=0),
    )
    job = cluster.job("build", "a100")
    cluster.pods[job.metadata.name] = [
        pod_running(GPU_IMAGE, V1ContainerState(terminated=V1ContainerStateTerminated(
            reason="StartError", exit_code=128, message=NOT_FOUND)), age=5)
    ]  # fmt: skip
    expected = (
        f"target a100: the container of image {GPU_IMAGE} could not start (exit code 128): "
        + NOT_FOUND
    )
    out = reconcile(body(bucket), cluster, settings)  # type: ignore[arg-type]
    a100 = out.status["targets"][0]
    assert (a100["phase"], a100["message"]) == ("Failed", expected)
    ready = cond(out.status, "Ready")
    assert (ready["reason"], ready["message"]) == ("ContainerCannotRun", expected)

    # The Job's retry pod, still starting, does not make the target look healthy again.
    cluster.pods[job.metadata.name].append(
        pod_running(GPU_IMAGE, V1ContainerState(waiting=V1ContainerStateWaiting(
            reason="ContainerCreating")))
    )  # fmt: skip
    again = reconcile(body(bucket), cluster, settings)  # type: ignore[arg-type]
    assert again.status["targets"][0]["message"] == expected


@pytest.mark.parametrize(
    ("reason", "exit_code", "message", "cannot_start"),
    [
        ("StartError", 128, NOT_FOUND, True),
        ("ContainerCannotRun", 127, 'exec: "bpnet-export": not found', True),
        ("Error", 127, "/bin/sh: bpnet-build: not found", True),
        ("Error", 1, "Traceback (most recent call last): ...", False),
        ("Error", 128, json.dumps({"ok": False, "reason": "WrongKey"}), False),
    ],
)
def test_which_terminations_are_containers_that_could_not_start(
    reason: str, exit_code: int, message: str, cannot_start: bool
) -> None:
    state = V1ContainerState(
        terminated=V1ContainerStateTerminated(reason=reason, exit_code=exit_code, message=message)
    )
    found = pods.report([pod_running(GPU_IMAGE, state)]).start_failure
    if cannot_start:
        assert found == pods.StartFailure(GPU_IMAGE, exit_code, message)
    else:
        assert found is None


def test_evaluation_reference_and_per_target_ap_reach_the_status(
    bucket: str, s3_endpoint: S3Endpoint
) -> None:
    from bodypose_operator.controller import metrics

    evaluation = {"annotationsUri": f"s3://{bucket}/eval/keypoints.json",
                  "imagesUri": f"s3://{bucket}/eval/images", "maxApDrop": 1.5}  # fmt: skip
    cluster, settings = RecordedCluster(), Settings(pending_check_seconds=0)
    first = reconcile(body(bucket, evaluation=evaluation), cluster, settings)  # type: ignore[arg-type]
    export_args = first.create[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert export_args[-4:] == ["--eval_annotations", evaluation["annotationsUri"],
                                "--eval_images", evaluation["imagesUri"]]  # fmt: skip
    prefix = f"s3://{bucket}/out/ml/demo/{first.status['contentKey']}"
    put_manifest(s3_endpoint, f"{prefix}/manifest.json", {
        "artifacts": [],
        "evaluation": {"images": 40, "people": 82, "note": None,
                       "figures": {"AP": 52.634, "AP50": 100.0, "AP75": 51.2, "APm": 40.0,
                                   "APl": 60.0}},
    })  # fmt: skip
    building = reconcile(body(bucket, evaluation=evaluation), cluster, settings)  # type: ignore[arg-type]
    assert building.status["evaluation"] == {
        "images": 40, "ap": 52.63, "ap50": 100.0, "ap75": 51.2, "apM": 40.0, "apL": 60.0
    }  # fmt: skip
    build = next(m for m in building.create if m["metadata"]["labels"].get(LABEL_TARGET) == "cpu")
    args = build["spec"]["template"]["spec"]["containers"][0]["args"]
    flags = dict(zip(args[::2], args[1::2], strict=False))
    assert flags["--eval_reference"] == f"{prefix}/evaluation.json"
    assert flags["--max_ap_drop"] == "1.5"
    for target, (ap, drop) in {"a100": (52.1, 0.53), "cpu": (50.0, 2.63)}.items():
        put_target_manifest(s3_endpoint, prefix, body("any"), target, {
            "artifacts": [
                {"kind": "engine", "path": f"{prefix}/targets/{target}/e.engine", "sha256": "a",
                 "bytes": 1},
                {"kind": "deploy-engine", "path": f"{prefix}/targets/{target}/e.deploy.engine",
                 "sha256": "b", "bytes": 2},
            ],
            "evaluation": {"images": 40, "figures": {"AP": ap}, "reference": {"AP": 52.63},
                           "apDrop": drop, "maxApDrop": 1.5, "passed": drop <= 1.5},
        })  # fmt: skip
    ready = reconcile(body(bucket, evaluation=evaluation), cluster, settings)  # type: ignore[arg-type]
    cond(ready.status, "Ready")  # the status fits the CRD
    targets = {t["name"]: t for t in ready.status["targets"]}
    assert (targets["cpu"]["ap"], targets["cpu"]["apDrop"], targets["cpu"]["maxApDrop"]) == (
        50.0, 2.63, 1.5)  # fmt: skip
    assert ready.status["worstApDrop"] == 2.63
    # The evaluated engine is the target's; the SDK-compatible one is published beside it.
    assert targets["cpu"]["engineUri"].endswith("/e.engine")
    assert targets["cpu"]["deployEngine"] == {
        "uri": f"{prefix}/targets/cpu/e.deploy.engine",
        "sha256": "b",
        "sizeBytes": 2,
    }
    metrics.record_ap("demo", "ml", ready.status)
    assert metrics.TARGET_AP.labels("ml", "demo", "cpu")._value.get() == 50.0
    metrics.forget("demo", "ml")
    assert ("ml", "demo", "cpu") not in metrics.TARGET_AP._metrics


def test_a_content_index_that_cannot_be_written_is_a_later_look_not_an_error(
    bucket: str,
    s3_endpoint: S3Endpoint,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The index only spares another resource a build: the pass's Jobs and status stand,
    and the entry is written on a later look (the service's passes are this reconcile)."""
    import logging

    from bodypose_operator.controller.artifacts import ArtifactStore, S3Refused

    cluster, settings = RecordedCluster(), Settings(pending_check_seconds=0)
    first = reconcile(body(bucket), cluster, settings)  # type: ignore[arg-type]
    prefix = f"s3://{bucket}/out/ml/demo/{first.status['contentKey']}"
    put_manifest(s3_endpoint, f"{prefix}/manifest.json", {"artifacts": []})

    def refuse(self: ArtifactStore, index: str, manifest_uri: str) -> bool:
        raise S3Refused("AccessDenied", f"access denied: cannot write {index}")

    monkeypatch.setattr(ArtifactStore, "record", refuse)
    with caplog.at_level(logging.WARNING, logger="bodypose_operator"):
        out = reconcile(body(bucket), cluster, settings)  # type: ignore[arg-type]
    assert out.status["phase"] == "Building"
    assert {j.metadata.labels.get(LABEL_TARGET) for j in cluster.jobs.values()} == {
        None, "a100", "cpu",
    }  # fmt: skip
    assert out.requeue_after == 30.0
    assert "ml/demo: content index not written: access denied: cannot write" in caplog.text


def test_reuse_checks_what_it_reuses_and_builds_when_an_artifact_was_replaced(
    bucket: str, s3_endpoint: S3Endpoint
) -> None:
    """A content-index entry is taken only while every artifact its manifest lists is there
    with the size and sha256 it records: an engine replaced in the shared bucket is not
    reused, an event says so, and the target is built."""
    first_cluster, settings = RecordedCluster(), Settings(pending_check_seconds=0)
    first = reconcile(body(bucket), first_cluster, settings)  # type: ignore[arg-type]
    prefix = f"s3://{bucket}/out/ml/demo/{first.status['contentKey']}"
    _complete(s3_endpoint, prefix, ("a100", "cpu"))
    assert reconcile(body(bucket), first_cluster, settings).status["phase"] == "Ready"  # type: ignore[arg-type]
    # Someone with write access replaces the cpu engine (same size, other bytes).
    engine = f"{target_folder(prefix, body('any'), 'cpu')}/e"
    put_artifact(s3_endpoint, "engine", engine, b"engine xyz")
    other = body(bucket)
    other["metadata"]["name"] = "copy"
    cluster = RecordedCluster()
    out = reconcile(other, cluster, settings)  # type: ignore[arg-type]
    phases = {t["name"]: t["phase"] for t in out.status["targets"]}
    assert phases == {"a100": "Ready", "cpu": "Pending"}
    [started] = [e.message for e in out.events if e.reason == "BuildStarted"]
    assert f"{prefix}/targets/cpu/" in started and "was not reused" in started
    assert f"{engine} has sha256 " in started and "its manifest records" in started
    # Gone altogether: the same.
    s3_endpoint.client().delete_object(Bucket=bucket, Key=engine.split("/", 3)[3])
    gone = reconcile(other, RecordedCluster(), settings)  # type: ignore[arg-type]
    [started] = [e.message for e in gone.events if e.reason == "BuildStarted"]
    assert f"{engine} is missing" in started


def test_an_int8_artifact_no_faster_than_fp32_is_ready_with_a_warning_event(
    bucket: str, s3_endpoint: S3Endpoint
) -> None:
    """A CPU int8 artifact its build found no faster than FP32 (x86 without VNNI): Ready,
    published, its status and a Warning event carry both figures; rebuilt where int8 pays
    (its pool moved), the warning goes."""
    cluster, settings = RecordedCluster(), Settings(pending_check_seconds=0)
    # The operator carries what the manifest says; the spec's precision is not its business.
    resource = body(bucket, targets=[{"name": "cpu", "backend": "onnxruntime"}])
    prefix = exported(resource, cluster, settings, s3_endpoint, bucket)
    warning = ("int8 is not faster than fp32 on Intel Xeon: int8 11.00 ms, fp32 10.00 ms at "
               "batch 1 (0.91x, medians of 40 runs each, timed in turns); published all "
               "the same")  # fmt: skip
    ran = {"precision": "int8", "figures": {"cosine": 0.99}, "gates": {"cosine": 0.98},
           "passed": True, "failures": [], "run": True, "outcome": "verified"}  # fmt: skip

    def built(speedup: dict[str, Any], warnings: list[str]) -> None:
        put_target_manifest(s3_endpoint, prefix, resource, "cpu", {
            "artifacts": [{"kind": "engine", "path": f"{prefix}/targets/cpu/e",
                           "sha256": "cd", "bytes": 7}],
            "timingsSeconds": {"build": 12.5}, "verification": ran,
            "int8Speedup": speedup, "warnings": warnings,
        })  # fmt: skip

    built({"int8MedianMs": 11.0, "fp32MedianMs": 10.0, "ratio": 0.91, "runs": 40}, [warning])
    ready = reconcile(resource, cluster, settings)  # type: ignore[arg-type]
    assert ready.status["phase"] == "Ready"
    (event,) = [e for e in ready.events if e.reason == "BuildWarning"]
    assert (event.type, event.message) == ("Warning", f"target cpu: {warning}")
    (cpu,) = ready.status["targets"]
    assert cpu["warnings"] == [warning]
    assert cpu["int8Speedup"] == {"int8Ms": 11.0, "fp32Ms": 10.0, "ratio": 0.91, "runs": 40}
    built({"int8MedianMs": 3.0, "fp32MedianMs": 10.0, "ratio": 3.33, "runs": 40}, [])
    again = reconcile(resource, cluster, settings)  # type: ignore[arg-type]
    (cpu,) = again.status["targets"]
    assert "warnings" not in cpu and cpu["int8Speedup"]["ratio"] == 3.33
