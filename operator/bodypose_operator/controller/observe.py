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
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError

from bodypose_contract.artifacts import MANIFEST_NAME
from bodypose_contract.manifest import Key
from bodypose_operator.api.backends import BACKENDS
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
from bodypose_operator.controller.facts import Facts, StageFacts
from bodypose_operator.controller.job_status import (
    job_age,
    job_started,
    job_state,
    job_suspended,
    waiting_in_queue,
)
from bodypose_operator.settings import Settings


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
    recorded = manifest.get(Key.TARGET_IDENTITY)
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
            f"the operator may not list nodes ({exc}): built for x86 with int7 weights "
            "(uint8 where int7 misses the gates), right on every x86 CPU",
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
    """The facts of one pass, read in the order they depend on each other: the spec, the
    credentials, the model's digest (the content key), the Jobs, then the stages. A
    step that cannot go on says why in the facts, and the pass stops there."""
    meta = body["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    facts = Facts(now=now or dt.datetime.now(dt.UTC))
    try:
        spec = facts.spec = BodyPoseExportSpec.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        facts.invalid = _invalid(exc)
        return facts
    access = _access(stores, namespace, spec, facts)
    if access is None:
        return facts
    digest = _model_digest(access, spec, facts)
    if digest is None:
        return facts
    key = facts.key = content_key(digest, spec)
    facts.prefix = artifact_prefix(spec, namespace, name, key)
    jobs = _Jobs(cluster.jobs_of(namespace, name), key, facts)
    try:
        export = _export_stage(body, spec, cluster, access, settings, jobs, facts)
        if export.manifest is not None:
            _target_stages(body, spec, cluster, access, settings, jobs, facts)
    except S3Refused as exc:
        facts.refused = _refused(exc, access.where)
    except S3Unreachable as exc:
        facts.s3_unreachable = str(exc)
    return facts


@dataclass(frozen=True)
class _Access:
    """How this resource's S3 objects are read: the store (its credentials'), how those
    credentials are named in a refusal, and their values, redacted from what pods say."""

    store: ArtifactStore
    where: str
    secrets: frozenset[str]


def _access(
    stores: Stores, namespace: str, spec: BodyPoseExportSpec, facts: Facts
) -> _Access | None:
    """The resource's S3 access; None (and why, in the facts) when its credentials fail."""
    try:
        store = facts.store = stores.for_resource(namespace, spec)
    except CredentialsProblem as exc:
        facts.refused = (exc.reason, str(exc))
        return None
    return _Access(store, stores.where(namespace, spec), stores.secret_values(namespace, spec))


def _model_digest(access: _Access, spec: BodyPoseExportSpec, facts: Facts) -> str | None:
    """The model's digest, which the content key starts from; None (and why) without it."""
    try:
        return access.store.model_digest(spec.model.uri)
    except ModelNotFound as exc:
        facts.model_missing = str(exc)
    except S3Refused as exc:
        facts.refused, facts.refused_model = _refused(exc, access.where), True
    except S3Unreachable as exc:
        facts.s3_unreachable = str(exc)
    return None


class _Jobs:
    """The resource's Jobs, sorted by the content key now: those of an older key still
    running are obsolete at once; those of this key are each stage's own, or, made for
    another spec of the stage, obsolete too (`stale`)."""

    def __init__(self, jobs: Iterable[Any], key: str, facts: Facts) -> None:
        listed = list(jobs)
        self.current = [job for job in listed if job.metadata.labels.get(LABEL_CONTENT_KEY) == key]
        self.facts = facts
        facts.obsolete = [
            job for job in listed
            if job.metadata.labels.get(LABEL_CONTENT_KEY) != key and job_state(job) == "Active"
        ]  # fmt: skip
        facts.running = sum(
            job_state(job) == "Active" and not job_suspended(job)
            for job in self.current
        )  # fmt: skip

    def find(self, desired: dict[str, Any]) -> Any | None:
        """The Job of this key that `desired` names, if it was made."""
        for job in self.current:
            if job.metadata.name == desired["metadata"]["name"]:
                return job
        return None

    def stale(self, stage: str, wanted: set[str]) -> None:
        """The stage's Jobs of the current key made for another spec of it: obsolete,
        unless they succeeded (their artifacts are in S3, and cost nothing to keep)."""
        for job in self.current:
            labels = job.metadata.labels
            if labels.get(LABEL_STAGE) != stage or job.metadata.name in wanted:
                continue
            if job_state(job) != "Succeeded":
                self.facts.obsolete.append(job)


def _export_stage(
    body: dict[str, Any],
    spec: BodyPoseExportSpec,
    cluster: Cluster,
    access: _Access,
    settings: Settings,
    jobs: _Jobs,
    facts: Facts,
) -> StageFacts:
    """The export stage's facts; the targets' are read only once it has a manifest."""
    assert facts.key is not None and facts.prefix is not None
    old = body.get("status") or {}
    desired = build_export_job(body, spec, facts.key, settings)
    facts.export = _stage(
        cluster, access.store, settings, body["metadata"]["namespace"],
        StageFacts(f"{facts.prefix}/{MANIFEST_NAME}",
                   index_uri(spec.output.uri, facts.key, "export"), desired, jobs.find(desired),
                   seen_retries=int(old.get("exportRetries") or 0)),
        facts.now, access.secrets,
    )  # fmt: skip
    jobs.stale("export", {desired["metadata"]["name"]})
    return facts.export


def _target_stages(
    body: dict[str, Any],
    spec: BodyPoseExportSpec,
    cluster: Cluster,
    access: _Access,
    settings: Settings,
    jobs: _Jobs,
    facts: Facts,
) -> None:
    """Each target's facts, under its identity now (its pool, options, image, CPU class)."""
    assert facts.key is not None and facts.prefix is not None and facts.export is not None
    old = body.get("status") or {}
    seen = {t.get("name"): t for t in old.get("targets") or [] if isinstance(t, dict)}
    # The build reads the export's artifacts where they are: under this resource's
    # prefix, or another resource's with the same content (the index found them).
    shared = facts.export.manifest_uri.rsplit("/", 1)[0]
    wanted = set()
    for target in spec.targets:
        cpu = _int8_class(cluster, spec, target)
        cpu_name = cpu.name if cpu else None
        identity = target_identity(target, settings.build_image(target.backend), cpu_name)
        desired = build_target_job(
            body, spec, target, facts.key, settings, identity, shared, cpu_name
        )
        wanted.add(desired["metadata"]["name"])
        stage = StageFacts(
            f"{target_prefix(facts.prefix, target.name, identity)}/{MANIFEST_NAME}",
            index_uri(spec.output.uri, facts.key, f"pool-{identity}"), desired,
            jobs.find(desired), identity=identity, int8_class=cpu,
            seen_retries=int(seen.get(target.name, {}).get("retries") or 0),
            seen_failure=seen.get(target.name, {}).get("lastFailure"),
        )  # fmt: skip
        facts.targets[target.name] = _stage(cluster, access.store, settings,
                                            body["metadata"]["namespace"], stage,
                                            facts.now, access.secrets)  # fmt: skip
    jobs.stale("build", wanted)
