"""Observe: the facts one reconcile of one resource decides from, and nothing more.

Reads the model's digest and the stage manifests from S3 with the credentials
the resource names (controller/credentials.py), the resource's Jobs from the
API server, and a Job's pods only when they can say something the Job
cannot: when the Job has ended (its termination message) or when it has not
started after `pending_check_seconds` (an image that cannot be pulled, a pool
with no room). A Job that is running or waiting its first seconds costs no pod
read, so a reconcile triggered by a Job's event stays one list call and a few
S3 reads.

A Job waiting in a Kueue queue (suspended, with the queue label) has no pods to
read: its Workload says why it waits, read (one list call) only while the Job is
suspended and only when the operator runs with queueing on (it may then read
Workloads); the pending deadline does not run for it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError

from bodypose_operator.api.artifacts import MANIFEST_NAME
from bodypose_operator.api.backends import BACKENDS
from bodypose_operator.api.queues import QUEUE_LABEL
from bodypose_operator.api.v1alpha1 import BodyPoseExportSpec, Target
from bodypose_operator.builders.jobs import (
    artifact_prefix,
    build_export_job,
    build_target_job,
    target_prefix,
)
from bodypose_operator.builders.naming import (
    LABEL_CONTENT_KEY,
    LABEL_STAGE,
    content_key,
    target_identity,
)
from bodypose_operator.controller import pods
from bodypose_operator.controller.artifacts import (
    ArtifactStore,
    ModelNotFound,
    S3Refused,
    S3Unreachable,
    index_uri,
)
from bodypose_operator.controller.cluster import Cluster, WorkloadsUnavailable
from bodypose_operator.controller.cpu_class import PORTABLE, PoolClass, pool_int8_class
from bodypose_operator.controller.credentials import CredentialsProblem
from bodypose_operator.settings import Settings


def job_state(job: Any) -> str:
    """Succeeded | Failed | Active, from the Job's own status."""
    st = job.status
    if st.succeeded:
        return "Succeeded"
    for cond in st.conditions or []:
        if cond.type == "Failed" and cond.status == "True":
            return "Failed"
    return "Active"


def job_queue(job: Any) -> str | None:
    """The Kueue LocalQueue the Job names, or None."""
    return (job.metadata.labels or {}).get(QUEUE_LABEL)


def job_suspended(job: Any) -> bool:
    """Suspended (spec.suspend): a queued Job Kueue has not admitted, or has preempted."""
    return bool(getattr(job.spec, "suspend", None))


def job_age(job: Any, now: dt.datetime) -> float:
    """Seconds the Job has been trying to start: since the Job controller started it
    (status.startTime, which it resets whenever the Job is resumed from suspension),
    else since it was made. A queued Job that Kueue has just resumed, not yet started by
    the Job controller, is 0 s old: its time in the queue is no time spent starting."""
    started = getattr(job.status, "start_time", None)
    if started is None and job_queue(job) is not None:
        return 0.0
    since = started or job.metadata.creation_timestamp
    return 0.0 if since is None else (now - since).total_seconds()


def job_started(job: Any) -> bool:
    """A pod of the Job is ready (running) or has succeeded: nothing is stuck before it.
    Failed pods do not count: a retry that cannot start is what a check must find."""
    st = job.status
    return bool(st.ready or st.succeeded)


@dataclass
class StageFacts:
    """One stage (the export, or one target's build) as S3 and the API server see it.

    `job` is the Job of the stage's spec as it is now (the one `desired` names), never one
    made for an earlier spec of the stage: those are in `Facts.obsolete`."""

    manifest_uri: str
    index: str
    #: The Job this stage's spec asks for (created when the stage has neither a manifest
    #: nor this Job).
    desired: dict[str, Any]
    job: Any | None = None
    manifest: dict[str, Any] | None = None
    reused: bool = False
    report: pods.PodReport | None = None  # None: the pods were not read
    #: A queued Job's Kueue Workload, read while the Job is suspended; None: none yet, or
    #: not read (then `workload_unread` says why).
    workload: dict[str, Any] | None = None
    workload_unread: str | None = None
    #: A target's identity now (`naming.target_identity`); None for the export.
    identity: str | None = None
    #: The CPU class its int8 artifact is built for, where the backend's depends on it.
    int8_class: PoolClass | None = None
    #: Failed attempts the status already reports (its `retries`): more than that on a
    #: finished Job are news, whose last reason its pods tell.
    seen_retries: int = 0
    #: The `lastFailure` the status shows for those: kept while no attempt failed since.
    seen_failure: str | None = None
    #: Why a manifest found was not taken (another identity, or an index entry whose
    #: artifacts are not what its manifest records), for an event.
    ignored: str | None = None


@dataclass
class Facts:
    now: dt.datetime
    spec: BodyPoseExportSpec | None = None
    invalid: str | None = None  # why the spec is refused
    model_missing: str | None = None
    #: (reason, message): S3 or the credentials said no; retrying soon will not help.
    refused: tuple[str, str] | None = None
    #: True when the refusal was about the model (before any stage was read).
    refused_model: bool = False
    s3_unreachable: str | None = None
    #: The store this resource's S3 reads used (its credentials'), for act's writes.
    store: ArtifactStore | None = None
    key: str | None = None
    prefix: str | None = None
    #: Jobs made for what the spec no longer asks for and not succeeded: an older content
    #: key's still running, or, under the current key, another spec of a stage (a
    #: target moved, renamed, removed or rescheduled) running or failed. Deleted.
    obsolete: list[Any] = field(default_factory=list)
    running: int = 0
    export: StageFacts | None = None
    targets: dict[str, StageFacts] = field(default_factory=dict)


def _invalid(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"spec{'.' + where if where else ''}: {first['msg']}"


def _needs_pods(job: Any, settings: Settings, now: dt.datetime) -> bool:
    if job_state(job) != "Active":
        return True
    if job_suspended(job):
        return False  # no pods: it waits in its queue, or was suspended by hand
    if job.status.failed:
        return True  # a retry under way: why the last attempt failed
    return not job_started(job) and job_age(job, now) >= settings.pending_check_seconds


def waiting_in_queue(job: Any) -> bool:
    """A Job of ours that waits in a Kueue queue: queued, suspended, not finished."""
    return job_queue(job) is not None and job_suspended(job) and job_state(job) == "Active"


#: Why a waiting Job's Workload is not read when the operator runs without queueing.
NOT_WATCHING = (
    "Kueue's reason is not read: the operator runs without kueue.enabled (the chart's "
    "kueue.enabled, or jobs.queueName)"
)


def _workload(
    cluster: Cluster, settings: Settings, namespace: str, job: Any, facts: StageFacts
) -> None:
    if not settings.queueing:
        facts.workload_unread = NOT_WATCHING
        return
    try:
        facts.workload = cluster.workload_of(namespace, str(job.metadata.uid))
    except WorkloadsUnavailable as exc:
        facts.workload_unread = str(exc)


def _stage(
    cluster: Cluster,
    store: ArtifactStore,
    settings: Settings,
    namespace: str,
    facts: StageFacts,
    now: dt.datetime,
    secrets: frozenset[str] = frozenset(),
) -> StageFacts:
    """A stage's manifest (its own, else one the content index names while no Job of
    ours runs for it), and its Job's pods when they are worth reading. A target's
    manifest counts only when it records the target's identity now."""
    job = facts.job
    facts.manifest = _own(store.read_manifest(facts.manifest_uri), facts)
    if facts.manifest is None and job is None:
        found = store.reusable(facts.index)
        if found is not None and _own(found[1], facts) is not None:
            problem = store.mismatch(found[1])
            if problem is None:
                facts.manifest_uri, facts.manifest = found
                facts.reused = True
            else:
                facts.ignored = f"{found[0]} was not reused: {problem}"
    unseen = job is not None and int(job.status.failed or 0) > facts.seen_retries
    if job is not None and (
        (facts.manifest is None and _needs_pods(job, settings, now))
        or (facts.manifest is not None and unseen)
    ):
        # Redacted with the resource's credentials: the report becomes status and events.
        facts.report = pods.report(cluster.pods_of(namespace, job.metadata.name), secrets)
    if facts.manifest is None and job is not None and waiting_in_queue(job):
        _workload(cluster, settings, namespace, job, facts)
    return facts


def _own(manifest: dict[str, Any] | None, facts: StageFacts) -> dict[str, Any] | None:
    """The manifest, if it is one of this stage's identity (a target's records it)."""
    if manifest is None or facts.identity is None:
        return manifest
    recorded = manifest.get("targetIdentity")
    if recorded == facts.identity:
        return manifest
    facts.ignored = (
        f"an artifact recorded for identity {recorded or '(none: built before identities)'}, "
        f"not {facts.identity}, was not taken"
    )
    return None


def _int8_class(cluster: Cluster, spec: BodyPoseExportSpec, target: Target) -> PoolClass | None:
    """The CPU class of the nodes the target's pool names, for a backend whose int8
    artifact depends on it (one node list call); None where it does not matter."""
    if spec.precision != "int8" or not BACKENDS[target.backend].int8_by_cpu_class:
        return None
    try:
        nodes = cluster.node_labels(dict(target.nodeSelector))
    except PermissionError as exc:
        return PoolClass(
            PORTABLE,
            f"the operator may not list nodes ({exc}): built for x86 with uint8 weights, "
            "right on every x86 CPU",
        )
    return pool_int8_class(nodes, target.nodeSelector)


class Stores(Protocol):
    def for_resource(self, namespace: str, spec: BodyPoseExportSpec) -> ArtifactStore: ...

    def where(self, namespace: str, spec: BodyPoseExportSpec) -> str: ...

    def secret_values(self, namespace: str, spec: BodyPoseExportSpec) -> frozenset[str]: ...


def _refused(exc: S3Refused, where: str) -> tuple[str, str]:
    if exc.reason == "AccessDenied":
        return exc.reason, f"{exc} with {where}: grant them access to it, or use another URI"
    if exc.reason == "CredentialsRejected":
        return exc.reason, f"{exc}: check {where}"
    return exc.reason, str(exc)


def observe(
    body: dict[str, Any],
    cluster: Cluster,
    stores: Stores,
    settings: Settings,
    now: dt.datetime | None = None,
) -> Facts:
    meta = body["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    facts = Facts(now=now or dt.datetime.now(dt.UTC))
    try:
        spec = BodyPoseExportSpec.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        facts.invalid = _invalid(exc)
        return facts
    facts.spec = spec
    try:
        store = facts.store = stores.for_resource(namespace, spec)
    except CredentialsProblem as exc:
        facts.refused = (exc.reason, str(exc))
        return facts
    where = stores.where(namespace, spec)
    secrets = stores.secret_values(namespace, spec)
    try:
        digest = store.model_digest(spec.model.uri)
    except ModelNotFound as exc:
        facts.model_missing = str(exc)
        return facts
    except S3Refused as exc:
        facts.refused, facts.refused_model = _refused(exc, where), True
        return facts
    except S3Unreachable as exc:
        facts.s3_unreachable = str(exc)
        return facts
    key = facts.key = content_key(digest, spec)
    prefix = facts.prefix = artifact_prefix(spec, namespace, name, key)

    jobs = list(cluster.jobs_of(namespace, name))
    current = [job for job in jobs if job.metadata.labels.get(LABEL_CONTENT_KEY) == key]
    facts.obsolete = [
        job for job in jobs
        if job.metadata.labels.get(LABEL_CONTENT_KEY) != key and job_state(job) == "Active"
    ]  # fmt: skip
    facts.running = sum(
        job_state(job) == "Active" and not job_suspended(job)
        for job in current
    )  # fmt: skip

    def find(desired: dict[str, Any]) -> Any | None:
        for job in current:
            if job.metadata.name == desired["metadata"]["name"]:
                return job
        return None

    def stale(stage: str, wanted: set[str]) -> None:
        """The stage's Jobs of the current key made for another spec of it."""
        for job in current:
            labels = job.metadata.labels
            if labels.get(LABEL_STAGE) != stage or job.metadata.name in wanted:
                continue
            if job_state(job) != "Succeeded":
                facts.obsolete.append(job)

    output = spec.output.uri
    try:
        old = body.get("status") or {}
        seen = {t.get("name"): t for t in old.get("targets") or [] if isinstance(t, dict)}
        desired = build_export_job(body, spec, key, settings)
        facts.export = _stage(
            cluster, store, settings, namespace,
            StageFacts(f"{prefix}/{MANIFEST_NAME}", index_uri(output, key, "export"),
                       desired, find(desired),
                       seen_retries=int(old.get("exportRetries") or 0)),
            facts.now, secrets,
        )  # fmt: skip
        stale("export", {desired["metadata"]["name"]})
        if facts.export.manifest is None:
            return facts
        # The build reads the export's artifacts where they are: under this resource's
        # prefix, or another resource's with the same content (the index found them).
        shared = facts.export.manifest_uri.rsplit("/", 1)[0]
        wanted = set()
        for target in spec.targets:
            cpu = _int8_class(cluster, spec, target)
            identity = target_identity(
                target, settings.build_image(target.backend), cpu.name if cpu else None
            )
            desired = build_target_job(
                body, spec, target, key, settings, identity, shared, cpu.name if cpu else None
            )
            wanted.add(desired["metadata"]["name"])
            stage = StageFacts(
                f"{target_prefix(prefix, target.name, identity)}/{MANIFEST_NAME}",
                index_uri(output, key, f"pool-{identity}"), desired, find(desired),
                identity=identity, int8_class=cpu,
                seen_retries=int(seen.get(target.name, {}).get("retries") or 0),
                seen_failure=seen.get(target.name, {}).get("lastFailure"),
            )  # fmt: skip
            facts.targets[target.name] = _stage(cluster, store, settings, namespace, stage,
                                                facts.now, secrets)  # fmt: skip
        stale("build", wanted)
    except S3Refused as exc:
        facts.refused = _refused(exc, where)
    except S3Unreachable as exc:
        facts.s3_unreachable = str(exc)
    return facts
