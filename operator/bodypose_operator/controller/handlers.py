"""kopf handlers: thin. Each hands its trigger to the service kept in kopf's memo.

- `startup` makes the shared clients and the service (`memo.service`), and
  sets kopf's own behaviour: only warnings posted as events (kopf's chatter
  stays out of them); peering (standby replicas) is set up by main.py from the
  settings; kopf keeps no progress or diff base (no change handlers);
- the resources' and the Jobs' event handlers are coroutines: on kopf's event loop
  they ask the service whether the event is news (`resource_event_is_news`,
  `job_event_is_news`: from the body and the service's memory, no call), and only
  then hand it to a thread of kopf's executor, as kopf would run a sync handler.
  Most of a burst's events are no news (our own status patches, the Job
  controller's writes), and kopf ran each sync handler through a thread (py-spy
  over the 1000 x 3 burst of `make bench-operator`: 3% of the operator's CPU in the
  hand-off alone). Back to back, twice each: the operator's CPU 14.3 and 15.7 s
  against 15.4 and 16.1 s (issue 32);
- a resource's watch events go to the service (`on_resource_event`), which
  reconciles one it has not reconciled since it started and one whose spec its
  last pass did not see (`metadata.generation` against
  `status.observedGeneration`), and forgets a deleted one: kopf's create, update
  and resume handlers found the same with a diff base and progress annotations,
  a patch of every resource (issue 32);
- every event of a Job carrying the operator's `managed-by` label reconciles
  the Job's owner: children watched, not polled (kopf's docs, "Events" and
  "Filtering": `@kopf.on.event` with a label filter; the owner found through
  the Job's ownerReferences, as the Kubernetes garbage collector finds it),
  unless the Job shows what the owner's last pass saw of it (the service's
  `_no_news`: the ADDED event of a Job the pass made, the Job controller's
  writes no pass reads);
- with queueing on (`Settings.queueing`: the chart's kueue.enabled or
  jobs.queueName), every event of a Kueue Workload reconciles the resource that
  owns the Workload's Job (Workloads are owned by their Jobs): a Job waiting in
  its queue is reported in Kueue's words as soon as Kueue says something, with no
  polling; without queueing the Workloads are not watched at all (and the chart
  grants no access to them);
- a safety resync (`BODYPOSE_RESYNC_SECONDS`, default 10 minutes) covers an
  event lost while the operator was down: the service's own scheduled check,
  due that long after the last pass of a resource that is not Ready or Failed
  (`ExportService._next_check`), not a kopf timer: kopf puts its finalizer on
  every resource a timer matches (`kopf.on.timer` sets `requires_finalizer`),
  which cost a patch at creation and another at deletion (issue 32: 2.00 patches
  a resource in the 1000 x 3 burst) and left a resource undeletable while the
  operator was down, for nothing we clean up;
- a deleted resource is forgotten (its Jobs go by owner references; its
  artifacts stay in S3); `cleanup` cancels the scheduled checks.

Followed: kopf's documentation on startup/cleanup handlers and `memo`
("Configuration", "Handler kwargs"), event handlers with label filters
("Events", "Filtering"), and peering ("Peering": `settings.peering.*`); lsst-sqre/gafaelfawr's
kopf operator for the shape (thin handlers, a service built at start-up).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections.abc import Callable
from typing import Any

import kopf
from kubernetes import config as kube_config

from bodypose_operator.api import queues
from bodypose_operator.api.v1alpha1 import GROUP, PLURAL, VERSION
from bodypose_operator.controller.cluster import KubeCluster, api_client
from bodypose_operator.controller.service import ExportService
from bodypose_operator.settings import Settings

# Read once at import: whether the Workloads are watched is fixed at registration.
SETTINGS = Settings.from_env()
MANAGED = {"app.kubernetes.io/managed-by": "bodypose-operator"}


class NoDiffBase(kopf.DiffBaseStorage):
    """A diff base that is never built, read or stored.

    kopf builds one for every watch event, whatever its handlers (a deep copy of the
    body less its status and system fields, then diffed against the stored one), and
    only change handlers and daemons read it; this operator has neither. In the 1000 x 3
    burst of `make bench-operator` that copy and diff were 8% of the operator's CPU
    (py-spy). `settings.persistence.diffbase_storage` is where kopf takes a storage of
    one's own (its "Configuration" docs, "Change detection"; kopf's
    `PersistenceSettings`), and `kopf.DiffBaseStorage` the class it subclasses."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


@kopf.on.startup()
def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.posting.level = logging.WARNING
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.watching.server_timeout = 300
    if SETTINGS.peering_name:
        settings.peering.mandatory = True  # the peering resource must exist (the chart's)
    try:
        kube_config.load_incluster_config()  # type: ignore[no-untyped-call]
    except kube_config.ConfigException:
        kube_config.load_kube_config()  # type: ignore[no-untyped-call]
    memo.service = ExportService(SETTINGS, KubeCluster(api_client()))
    memo.executor = settings.execution.executor


@kopf.on.cleanup()
def cleanup(memo: kopf.Memo, **_: Any) -> None:
    service: ExportService | None = getattr(memo, "service", None)
    if service is not None:
        service.checks.cancel_all()


async def in_thread(memo: kopf.Memo, work: Callable[..., None], *args: Any) -> None:
    """`work` on kopf's executor, in a copy of this handler's context (kopf's event
    posting finds its queue there): as kopf runs a sync handler
    (kopf/_core/actions/invocation.py), for the events that need a pass only."""
    context = contextvars.copy_context()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(memo.executor, functools.partial(context.run, work, *args))


@kopf.on.event(GROUP, VERSION, PLURAL)
async def on_resource(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    if memo.service.resource_event_is_news(type, body):
        await in_thread(memo, memo.service.on_resource_event, type, dict(body))


@kopf.on.event("batch", "v1", "jobs", labels=MANAGED)
async def on_job(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    # The listing (type None) only notes each Job's owner, for the Jobs' Workloads'
    # events: the resources' own listing reconciles every owner.
    if memo.service.job_event_is_news(type, body):
        await in_thread(memo, memo.service.on_job_event, type, dict(body))


def on_workload(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    if type is None:
        return  # the listing: the resources' own listing reconciles every owner
    memo.service.on_workload_event(type, dict(body))


if SETTINGS.queueing:
    # No version: kopf watches the one the cluster prefers (v1beta2 from Kueue 0.15 on,
    # v1beta1 before), read-only (an event handler writes nothing to the object).
    kopf.on.event(group=queues.GROUP, plural=queues.WORKLOADS)(on_workload)
