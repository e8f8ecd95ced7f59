"""The operator tests' shared fakes: resources, an in-memory cluster, stage manifests in S3.

`RecordedCluster` implements `controller.cluster.Cluster` with a dict of
kubernetes-client objects standing in for the API server, so a test pins the
decisions (which Job, which status) one by one; S3 stays real (the MinIO of
the `s3_endpoint` fixture), reached with the credentials the resource names.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any

from kubernetes.client import (
    V1Container,
    V1ContainerState,
    V1ContainerStateTerminated,
    V1ContainerStatus,
    V1Job,
    V1JobCondition,
    V1JobSpec,
    V1JobStatus,
    V1ObjectMeta,
    V1Pod,
    V1PodCondition,
    V1PodSpec,
    V1PodStatus,
    V1PodTemplateSpec,
)

from bodypose_operator.api.v1alpha1 import BodyPoseExportStatus
from bodypose_operator.builders.naming import LABEL_STAGE, LABEL_TARGET
from tests.conftest import S3Endpoint


def spec_dict(**overrides: Any) -> dict[str, Any]:
    """A valid spec (fp16, one GPU target) with top-level fields replaced by `overrides`."""
    spec: dict[str, Any] = {
        "model": {
            "uri": "s3://models/bpnet/model.tlt",
            "keySecretRef": {"name": "bpnet-key", "key": "key"},
        },
        "input": {"height": 320, "width": 448},
        "precision": "fp16",
        "targets": [{"name": "a100", "nodeSelector": {"nvidia.com/gpu.product": "A100"}}],
        "output": {"uri": "s3://artifacts/bpnet", "credentialsSecretRef": {"name": "s3"}},
    }
    spec.update(overrides)
    return spec


def resource(spec: dict[str, Any], name: str = "demo") -> dict[str, Any]:
    """A BodyPoseExport in namespace ml, generation 3, as the API server hands it over."""
    return {
        "apiVersion": "bodypose.dev/v1alpha1",
        "kind": "BodyPoseExport",
        "metadata": {"name": name, "namespace": "ml", "uid": "1234-uid", "generation": 3},
        "spec": spec,
    }


#: The Secret `body` names; RecordedCluster answers it with the test's MinIO account.
CREDENTIALS = "s3-credentials"


class RecordedCluster:
    """Jobs created by the reconcile pass, and pods we attach to them; the resources'
    credentials Secret holds the test's MinIO account (the AWS_* environment the
    `s3_endpoint` fixture sets), read when the operator asks for it."""

    def __init__(self, secrets: dict[str, dict[str, str]] | None = None) -> None:
        self.jobs: dict[str, V1Job] = {}
        self.pods: dict[str, list[V1Pod]] = {}
        self.deleted: list[str] = []
        self.secrets = secrets
        self.secret_reads = 0
        #: Kueue's Workloads by their Job's uid; `workloads_unavailable`: why none can be read.
        self.workloads: dict[str, dict[str, Any]] = {}
        self.workloads_unavailable: str | None = None
        self.workload_reads = 0
        self.manifests: dict[str, dict[str, Any]] = {}  # the Jobs as created
        #: The cluster's nodes: name -> labels (`node_labels` selects from them).
        self.nodes: dict[str, dict[str, str]] = {}
        self.node_reads = 0

    def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        self.secret_reads += 1
        if self.secrets is not None:
            return self.secrets.get(name)
        if name != CREDENTIALS:
            return None
        return {k: v for k, v in os.environ.items() if k.startswith("AWS_")}

    def jobs_of(self, namespace: str, resource: str) -> list[Any]:
        return list(self.jobs.values())

    def pods_of(self, namespace: str, job: str) -> list[Any]:
        return self.pods.get(job, [])

    def create_job(self, manifest: dict[str, Any]) -> bool:
        name = manifest["metadata"]["name"]
        if name in self.jobs:
            return False
        self.manifests[name] = manifest
        self.jobs[name] = V1Job(
            metadata=V1ObjectMeta(
                name=name,
                uid=f"uid-{name}",
                labels=manifest["metadata"]["labels"],
                creation_timestamp=dt.datetime.now(dt.UTC),
            ),
            spec=V1JobSpec(suspend=manifest["spec"].get("suspend"), template=V1PodTemplateSpec()),
            status=V1JobStatus(),
        )
        return True

    def workload_of(self, namespace: str, job_uid: str) -> dict[str, Any] | None:
        from bodypose_operator.controller.cluster import WorkloadsUnavailable

        self.workload_reads += 1
        if self.workloads_unavailable is not None:
            raise WorkloadsUnavailable(self.workloads_unavailable)
        return self.workloads.get(job_uid)

    def node_labels(self, selector: dict[str, str]) -> list[tuple[str, dict[str, str]]]:
        """The nodes whose labels hold every pair of the selector, as a list call returns them."""
        self.node_reads += 1
        return [
            (name, dict(labels))
            for name, labels in sorted(self.nodes.items())
            if all(labels.get(key) == value for key, value in selector.items())
        ]

    def delete_job(self, namespace: str, name: str) -> None:
        self.deleted.append(name)
        self.jobs.pop(name, None)

    def job(self, stage: str, target: str | None = None) -> V1Job:
        return next(
            j
            for j in self.jobs.values()
            if j.metadata.labels[LABEL_STAGE] == stage
            and j.metadata.labels.get(LABEL_TARGET) == target
        )

    def fail(self, job: V1Job, message: dict[str, Any]) -> None:
        job.status = V1JobStatus(
            failed=1, conditions=[V1JobCondition(type="Failed", status="True")]
        )
        self.pods[job.metadata.name] = [
            pod(V1ContainerState(terminated=V1ContainerStateTerminated(
                exit_code=2, message=json.dumps(message))))
        ]  # fmt: skip


def pod(state: V1ContainerState, conditions: list[V1PodCondition] | None = None) -> V1Pod:
    """A Job's pod whose one container is in `state`."""
    return V1Pod(
        metadata=V1ObjectMeta(creation_timestamp=dt.datetime.now(dt.UTC)),
        status=V1PodStatus(
            container_statuses=[
                V1ContainerStatus(
                    name="c", image="i", image_id="", ready=False, restart_count=0, state=state
                )
            ],
            conditions=conditions,
        ),
    )


def body(bucket: str, **overrides: Any) -> dict[str, Any]:
    """A resource whose model and output are in `bucket`, with a GPU target (a100) and a
    CPU one (cpu), reaching S3 through the CREDENTIALS Secret."""
    overrides.setdefault("targets", [{"name": "a100"}, {"name": "cpu", "backend": "onnxruntime"}])
    spec = spec_dict(
        model={"uri": f"s3://{bucket}/models/m.tlt", "keySecretRef": {"name": "k", "key": "key"}},
        output={"uri": f"s3://{bucket}/out", "credentialsSecretRef": {"name": CREDENTIALS}},
        **overrides,
    )
    return resource(spec)


def put_manifest(endpoint: S3Endpoint, uri: str, manifest: dict[str, Any]) -> None:
    """Write a stage manifest where a Job would: the stage is then complete."""
    bucket, _, key = uri[5:].partition("/")
    endpoint.client().put_object(Bucket=bucket, Key=key, Body=json.dumps(manifest).encode())


def put_artifact(endpoint: S3Endpoint, kind: str, uri: str, data: bytes) -> dict[str, Any]:
    """Write an artifact object; its manifest entry (kind, path, sha256, bytes), as a build
    records it, so that reuse, which checks every object against its entry, takes it."""
    import hashlib

    bucket, _, key = uri[5:].partition("/")
    endpoint.client().put_object(Bucket=bucket, Key=key, Body=data)
    return {"kind": kind, "path": uri, "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data)}  # fmt: skip


def target_folder(prefix: str, resource: dict[str, Any], target: str, settings: Any = None) -> str:
    """Where a target's build publishes: `<prefix>/targets/<name>/<identity now>`."""
    from bodypose_operator.api.v1alpha1 import BodyPoseExportSpec
    from bodypose_operator.builders.naming import target_identity
    from bodypose_operator.settings import Settings

    settings = settings or Settings()
    spec = BodyPoseExportSpec.model_validate(resource["spec"])
    found = next(t for t in spec.targets if t.name == target)
    identity = target_identity(found, settings.build_image(found.backend))
    return f"{prefix}/targets/{target}/{identity}"


def put_target_manifest(
    endpoint: S3Endpoint,
    prefix: str,
    resource: dict[str, Any],
    target: str,
    manifest: dict[str, Any],
    settings: Any = None,
) -> str:
    """Write a target's build manifest where its Job would (under the target's identity,
    recording it): the target is then built. Returns the manifest's URI."""
    folder = target_folder(prefix, resource, target, settings)
    identity = folder.rsplit("/", 1)[1]
    uri = f"{folder}/manifest.json"
    put_manifest(endpoint, uri, {**manifest, "targetIdentity": identity})
    return uri


def cond(status: dict[str, Any], type_: str) -> dict[str, Any]:
    """The condition of `type_`, from a status first checked against the CRD's schema."""
    # Every status the tests read fits the CRD's schema: a field it lacks would be
    # pruned by the API server (found when `retries` vanished on a real cluster).
    BodyPoseExportStatus.model_validate(status)
    return next(c for c in status["conditions"] if c["type"] == type_)


#: The GPU exporter image's default name (Settings()).
GPU_IMAGE = "bodypose-export/exporter-gpu:0.1.0"


def pod_running(image: str, state: V1ContainerState, age: float = 0) -> V1Pod:
    """A pod as the API server has it: the spec's image, and the container's state."""
    created = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=age)
    return V1Pod(
        metadata=V1ObjectMeta(creation_timestamp=created),
        spec=V1PodSpec(containers=[V1Container(name="build", image=image)]),
        status=V1PodStatus(
            container_statuses=[
                V1ContainerStatus(
                    name="build", image=image, image_id="", ready=False, restart_count=0,
                    state=state,
                )
            ],
        ),
    )  # fmt: skip


def count_passes(service: Any, field: str = "name") -> list[Any]:
    """Each reconcile pass of `service` (an ExportService) from now on, as the resource's
    `metadata[field]` it passed over (its name, or its generation): the list it fills."""
    passes: list[Any] = []
    original = service._reconcile

    def counted(resource: dict[str, Any]) -> Any:
        passes.append(resource["metadata"][field])
        return original(resource)

    service._reconcile = counted
    return passes
