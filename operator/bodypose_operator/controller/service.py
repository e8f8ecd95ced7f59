"""The operator's service: reconcile a resource when something about it changed.

Made once at start-up and kept in kopf's memo (controller/handlers.py), with
the clients it shares: one Kubernetes API client, and one S3 client per set of
credentials the resources name (controller/credentials.py). Three things
start a reconcile of a resource: a change of its own (`on_resource_event`: its
first sight by this process, or a spec this process has not reconciled yet),
an event of one of its Jobs (mapped to the owner through the
Job's owner reference), a change of a Kueue Workload of one of its Jobs (with
queueing on: mapped to the Job through the Workload's owner reference, then to
the Job's owner), and a check this service scheduled itself because a wait is on
time rather than on an event (a Job that has not started; S3 that did not
answer). Nothing polls: a resource whose Jobs are quiet, or wait in a queue,
costs nothing. A Job event whose Job shows what the last pass over its owner saw
(controller/job_digest.py) costs no pass either: most of a Job's events are the
Job controller's writes that no pass reads, and the ADDED event of a Job the pass
made (one pass from apply to a Job made, where there were three or four).

One lock per resource keeps two triggers of the same resource from deciding
at once (kopf runs sync handlers on a thread pool, and a check fires on a
worker of `Checks`).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import kopf
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

from bodypose_operator.api.v1alpha1 import GROUP, KIND, VERSION
from bodypose_operator.builders.naming import LABEL_CONTENT_KEY
from bodypose_operator.controller import metrics
from bodypose_operator.controller.act import status_patch
from bodypose_operator.controller.cluster import KubeCluster
from bodypose_operator.controller.credentials import ResourceStores
from bodypose_operator.controller.decide import TERMINAL, Decision
from bodypose_operator.controller.job_digest import Digest, job_digest
from bodypose_operator.controller.reconcile import reconcile as reconcile_once
from bodypose_operator.settings import Settings

log = logging.getLogger("bodypose_operator")

# The API server did not answer: look at the resource again after this long.
API_RETRY_SECONDS = 5.0
# A pass that raised otherwise (a bug, an answer it could not use): looked at again
# after this long, twice as long after each failure in a row, up to the cap. kopf
# retried its change handlers (every `execution.default_backoff` seconds), not its
# event handlers, and a check is ours.
FAILED_PASS_RETRY_SECONDS = 5.0
MAX_FAILED_PASS_RETRY_SECONDS = 300.0
# Jobs whose owner the service remembers (for their Workloads' events) before it starts
# again from the Jobs' next events.
MAX_REMEMBERED_JOBS = 20_000
# Scheduled checks that run at once (controller/service.py's Checks): enough to keep up,
# few enough that with kopf's handler threads they fit the API client's connection pool
# (controller/cluster.py's CONNECTIONS).
CHECK_WORKERS = 4
# A check due while the passes of events keep the operator busy waits for a pause of
# this long with none of them running (`ExportService.hold_checks`) ...
QUIET_SECONDS = 0.25
# ... but never longer than this after it fell due: a stream of events that never
# pauses delays a look, it does not lose it.
MAX_HOLD_SECONDS = 120.0
# The label every Job the operator makes carries (builders/jobs.py).
MANAGED_BY = ("app.kubernetes.io/managed-by", "bodypose-operator")


def api_unavailable(exc: BaseException) -> bool:
    """A connection refused or cut, a timeout, or a 5xx: the API server is away, not wrong."""
    if isinstance(exc, ApiException):
        return exc.status is None or exc.status == 0 or exc.status >= 500
    return isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError)


class EventPoster(Protocol):
    def __call__(self, body: dict[str, Any], type_: str, reason: str, message: str) -> None: ...


def post_event(body: dict[str, Any], type_: str, reason: str, message: str) -> None:
    # kopf.event, not kopf.info: posting.level (WARNING, to keep kopf's own handler
    # chatter out of the events) would drop our Normal events too.
    kopf.event(cast(Any, body), type=type_, reason=reason, message=message)


@dataclass
class Due:
    """One scheduled check: after `interval` seconds (at `at`, monotonic), in `context`."""

    interval: float
    at: float
    context: contextvars.Context


def never_hold() -> float:
    return 0.0


@dataclass
class Checks:
    """At most one scheduled check per resource: a new one replaces the old.

    One scheduler thread keeps the checks in a heap and hands each due one to a pool of
    `workers` threads. A thread per check (threading.Timer) cost a thread per resource
    (N stacks in the RSS) and, when a burst's checks fell due together, as many passes
    at once as resources: more than the API client's connection pool holds, so each
    extra pass opened (and dropped) a TLS connection of its own ("Connection pool is
    full" in the operator's log at N=500, `make bench-operator`).

    A check runs in a copy of the context it was scheduled from (a kopf handler's, or
    an earlier check's): kopf's event posting finds its queue through context
    variables that only kopf's own tasks carry.

    A due check waits while `hold()` says to (the seconds to wait yet), at most
    `max_hold` seconds past its time: the passes that events start go first. A check
    is a look on time (a Job that has not started, S3 or the API server away, the
    safety resync), news to no one at that second; a burst's event passes make its
    Jobs. Without the hold, the 15 s first looks at the burst's first pending Jobs
    fell inside a long burst and competed with it (issue 32: 1.6 passes a resource at
    1000 x 3 against 1.0 at 500, `benchmarks/operator_scale.py`). controller-runtime's
    priority queue serves its low-priority items after the others in the same way
    (https://github.com/kubernetes-sigs/controller-runtime/blob/main/designs/priorityqueue.md)."""

    fire: Any  # Callable[[str, str], None]
    workers: int = CHECK_WORKERS
    clock: Callable[[], float] = time.monotonic
    hold: Callable[[], float] = never_hold
    max_hold: float = MAX_HOLD_SECONDS
    _timers: dict[tuple[str, str], Due] = field(default_factory=dict)
    _heap: list[tuple[float, int, tuple[str, str], Due]] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=itertools.count)
    _wake: threading.Condition = field(default_factory=threading.Condition)
    _thread: threading.Thread | None = None
    _pool: ThreadPoolExecutor | None = None

    def schedule(self, namespace: str, name: str, seconds: float | None) -> None:
        key = (namespace, name)
        with self._wake:
            # A replaced check stays in the heap until it comes up, then is skipped: it
            # is no longer the one `_timers` holds.
            self._timers.pop(key, None)
            if seconds is None:
                return
            due = Due(seconds, self.clock() + seconds, contextvars.copy_context())
            self._timers[key] = due
            if len(self._heap) > 2 * len(self._timers) + 64:  # mostly replaced checks
                self._heap = [
                    entry for entry in self._heap if self._timers.get(entry[2]) is entry[3]
                ]
                heapq.heapify(self._heap)
            heapq.heappush(self._heap, (due.at, next(self._seq), key, due))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="checks", daemon=True)
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        """Until no check is left: wait for the earliest, hand the due ones to the pool
        (or put them back a little later while `hold` says so)."""
        with self._wake:
            while self._timers:
                now = self.clock()
                wait = self._heap[0][0] - now if self._heap else None
                if wait is not None and wait <= 0:
                    _, _, key, due = heapq.heappop(self._heap)
                    if self._timers.get(key) is not due:
                        continue
                    held = min(self.hold(), due.at + self.max_hold - now)
                    if held > 0:
                        # at least 50 ms: a held burst of checks is looked at again
                        # in a few batches, not spun over.
                        again = now + max(held, 0.05)
                        heapq.heappush(self._heap, (again, next(self._seq), key, due))
                        continue
                    del self._timers[key]
                    self._submit(key, due)
                    continue
                self._wake.wait(wait)
            self._heap.clear()
            self._thread = None

    def _submit(self, key: tuple[str, str], due: Due) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="check")
        self._pool.submit(self._fire, key, due.context)

    def _fire(self, key: tuple[str, str], context: contextvars.Context) -> None:
        try:
            context.run(self.fire, *key)
        except Exception:  # a failed check must not kill the worker silently
            log.exception("check of %s/%s failed", *key)

    def cancel_all(self) -> None:
        with self._wake:
            self._timers.clear()
            self._heap.clear()
            self._wake.notify()
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


class ExportService:
    def __init__(
        self,
        settings: Settings,
        cluster: KubeCluster,
        stores: ResourceStores | None = None,
        events: EventPoster = post_event,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.settings = settings
        # What "now" is to a pass (a Job's age, when its next check is due): the wall
        # clock, or a test's, so a test reads the exact delay the service computed.
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.cluster = cluster
        self.stores = stores if stores is not None else ResourceStores(cluster, settings)
        self.events = events
        self.checks = Checks(self.check, hold=self.hold_checks)
        # The passes events started that are running, and when the last one ended
        # (monotonic): what `hold_checks` answers from.
        self._event_passes = 0
        self._event_pass_ended = -float("inf")
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._foreign: set[str] = set()  # Jobs with our labels we did not make: logged once
        # Job uid -> (namespace, owner name, owner uid), or None for a Job not ours: how a
        # Workload event finds its resource. Filled from the Jobs' watch events; a Job not
        # seen yet is read once.
        self._job_owners: dict[str, tuple[str, str, str] | None] = {}
        # Jobs this service deleted (made for an earlier spec): their DELETED events are
        # no news to the user. Lost on restart, which costs at most a needless warning.
        self._deleting: set[tuple[str, str]] = set()
        # (namespace, resource) -> (its uid, Job name -> digest): what the last complete
        # pass over the resource saw of each of its Jobs (controller/job_digest.py).
        self._seen: dict[tuple[str, str], tuple[str, dict[str, Digest]]] = {}
        # (namespace, resource) -> the uid of it this process's last complete pass saw.
        self._known: dict[tuple[str, str], str] = {}
        # (namespace, resource) -> its passes that raised in a row (`_failed`).
        self._failures: dict[tuple[str, str], int] = {}

    def _lock(self, namespace: str, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(f"{namespace}/{name}", threading.Lock())

    # ---- triggers ----------------------------------------------------------------------
    @contextlib.contextmanager
    def _event_pass(self) -> Iterator[None]:
        """Marks a pass an event started, for `hold_checks`."""
        with self._guard:
            self._event_passes += 1
        try:
            yield
        finally:
            with self._guard:
                self._event_passes -= 1
                self._event_pass_ended = time.monotonic()

    def hold_checks(self) -> float:
        """How long a due check should wait yet (`Checks`): while a pass an event started
        runs, and until `QUIET_SECONDS` after the last one ended. A Job event that is no
        news (`_no_news`) starts no pass and holds nothing: a cluster whose Jobs report
        steadily does not delay the looks."""
        if self._event_passes:
            return QUIET_SECONDS
        return max(self._event_pass_ended + QUIET_SECONDS - time.monotonic(), 0.0)

    @contextlib.contextmanager
    def _pass(self, namespace: str, name: str) -> Iterator[None]:
        """One pass over a resource: under its lock, and with the API server not answering
        (restarted, overloaded) taken as no bug to trace: one line, and a check of the
        resource once it may be back. kopf's watches reconnect by themselves; this covers
        the pass that was cut. Any other failure is traced and tried again (`_failed`),
        whatever started the pass: a check may be the only trigger a resource has left,
        and kopf retries no event handler."""
        try:
            with self._lock(namespace, name):
                yield
        except Exception as exc:
            if not api_unavailable(exc):
                self._failed(namespace, name)
                return
            log.warning(
                "%s/%s: the API server did not answer (%s); looking again in %.0fs",
                namespace, name, type(exc).__name__, API_RETRY_SECONDS,
            )  # fmt: skip
            self.checks.schedule(namespace, name, API_RETRY_SECONDS)

    def on_resource_event(self, event_type: str | None, body: dict[str, Any]) -> None:
        """A watch event of the resource itself (`event_type` None: kopf's listing, at
        start and again should its watch have to start over).

        Reconciled: a resource this process has not reconciled yet (started, re-created)
        and a spec its last pass did not see (`metadata.generation` moves with the spec
        alone, and each pass writes the generation it saw into `status.observedGeneration`;
        the Kubernetes API conventions' way, which also catches a status someone wiped).
        Not: the MODIFIED events of our own status patches, labels and annotations, and a
        listing of what this process already reconciled: kopf's change handlers found the
        same with a diff base and progress kept in annotations, a patch of every resource
        and deep copies of every body (issue 32: the burst's largest cost).
        A pass that raises is tried again after a pause, as kopf retried its handlers.
        """
        meta = body["metadata"]
        if event_type == "DELETED":
            self.forget(meta["namespace"], meta["name"])
        elif self.resource_event_is_news(event_type, body):
            self.reconcile(body)

    def resource_event_is_news(self, event_type: str | None, body: Mapping[str, Any]) -> bool:
        """Whether the resource's event needs the work of `on_resource_event` (a pass, or
        forgetting it): from the event's body and this process's memory alone, no call and
        no lock a pass holds, so kopf's event loop asks it first (controller/handlers.py)
        and hands only the events that are news to a thread."""
        meta = body["metadata"]
        if event_type == "DELETED":
            return True
        if meta.get("deletionTimestamp"):
            return False  # going (another's finalizer holds it): its DELETED event follows
        seen = (body.get("status") or {}).get("observedGeneration")
        known = self._known.get((meta["namespace"], meta["name"]))
        return not (known == str(meta.get("uid")) and seen == meta.get("generation"))

    def _failed(self, namespace: str, name: str) -> None:
        """A pass raised (called in its `except`): its traceback, and a look later, later
        still for each failure in a row; a pass that succeeds ends the row."""
        failures = self._failures[(namespace, name)] = self._failures.get((namespace, name), 0) + 1
        delay = min(FAILED_PASS_RETRY_SECONDS * 2 ** (failures - 1), MAX_FAILED_PASS_RETRY_SECONDS)
        log.exception("%s/%s: the pass failed; looking again in %.0fs", namespace, name, delay)
        self.checks.schedule(namespace, name, delay)

    def reconcile(self, body: dict[str, Any]) -> Decision | None:
        """Reconcile the resource as `body` shows it (a handler's view of it)."""
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        with self._event_pass(), self._pass(namespace, name):
            return self._reconcile(body)
        return None

    def check(self, namespace: str, name: str) -> None:
        """A scheduled look: read the resource afresh, then reconcile it."""
        with self._pass(namespace, name):
            body = self.cluster.get_resource(namespace, name)
            if body is not None and not body["metadata"].get("deletionTimestamp"):
                self._reconcile(body)

    @staticmethod
    def _owner_ref(meta: Mapping[str, Any]) -> dict[str, Any] | None:
        return next(
            (
                ref
                for ref in meta.get("ownerReferences") or []
                if ref.get("kind") == KIND
                and ref.get("apiVersion") == f"{GROUP}/{VERSION}"
                and ref.get("controller")
            ),
            None,
        )

    def remember_job(self, job: Mapping[str, Any]) -> dict[str, Any] | None:
        """Note whose a Job is (for its Workload's events); its owner reference, if ours."""
        meta = job.get("metadata") or {}
        owner = self._owner_ref(meta)
        if len(self._job_owners) > MAX_REMEMBERED_JOBS:
            self._job_owners.clear()  # entries of Jobs long gone: what is current comes back
        self._job_owners[str(meta.get("uid"))] = (
            None if owner is None else (meta.get("namespace", ""), owner["name"], owner["uid"])
        )
        return owner

    def job_event_is_news(self, event_type: str | None, job: Mapping[str, Any]) -> bool:
        """Whether the Job's event needs the work of `on_job_event`: False for the listing
        (the Job's owner noted) and for a Job that shows what its owner's last pass saw
        while no pass over that owner runs (`_no_news`, decided now, under the owner's lock
        if it is free); True otherwise, the owner's lock busy included, and then
        `on_job_event` waits for the lock and decides again. No call and no wait, so kopf's
        event loop asks it first (controller/handlers.py): most of a burst's Job events end
        here, without a trip through a thread."""
        if event_type is None:
            self.remember_job(job)
            return False
        meta = job.get("metadata") or {}
        owner = self._owner_ref(meta)
        if event_type == "DELETED" or owner is None:
            return True
        lock = self._lock(meta.get("namespace", ""), owner["name"])
        if not lock.acquire(blocking=False):
            return True
        try:
            if not self._no_news(meta.get("namespace", ""), owner, job):
                return True
            self.remember_job(job)
            return False
        finally:
            lock.release()

    def on_job_event(self, event_type: str, job: dict[str, Any]) -> None:
        """A Job with our labels changed: reconcile its owner, if it has one that is ours."""
        meta = job.get("metadata") or {}
        namespace = meta.get("namespace", "")
        owner = self.remember_job(job)
        if owner is None:
            uid = str(meta.get("uid"))
            if uid not in self._foreign:
                self._foreign.add(uid)
                log.warning(
                    "Job %s/%s carries the operator's labels but no %s owns it: ignored",
                    namespace, meta.get("name"), KIND,
                )  # fmt: skip
            return
        with self._pass(namespace, owner["name"]):
            if event_type != "DELETED" and self._no_news(namespace, owner, job):
                return
            with self._event_pass():
                self._on_job_pass(event_type, namespace, owner, job)

    def _on_job_pass(
        self, event_type: str, namespace: str, owner: dict[str, Any], job: dict[str, Any]
    ) -> None:
        """The pass a Job's event with news starts (under its owner's lock)."""
        meta = job.get("metadata") or {}
        body = self.cluster.get_resource(namespace, owner["name"])
        if body is None or body["metadata"].get("uid") != owner.get("uid"):
            return  # the owner is gone (its Jobs go with it) or was replaced
        if body["metadata"].get("deletionTimestamp"):
            return
        ours = (namespace, str(meta.get("name")))
        if event_type == "DELETED" and ours in self._deleting:
            self._deleting.discard(ours)
        elif event_type == "DELETED" and self._deleted_unfinished(job, body):
            self.events(
                body, "Warning", "JobDeleted",
                f"Job {meta.get('name')} was deleted before it finished; creating it again",
            )  # fmt: skip
        self._reconcile(body)

    def _no_news(self, namespace: str, owner: dict[str, Any], job: Mapping[str, Any]) -> bool:
        """The Job shows what the last complete pass over its owner saw of it (or made):
        another pass would decide the same. Most of a Job's events are such: the Job
        controller writing what no pass reads (its start time, active pods, counters), and
        the ADDED event of a Job the pass made. A pass reads the resource as well, but a
        change of its spec has a pass of its own (kopf's update handler), and our own
        status patches are no input."""
        seen = self._seen.get((namespace, owner["name"]))
        if seen is None or seen[0] != owner.get("uid"):
            return False
        name = str((job.get("metadata") or {}).get("name"))
        return seen[1].get(name) == job_digest(job)

    def on_workload_event(self, event_type: str, workload: dict[str, Any]) -> None:
        """A Kueue Workload changed: reconcile the resource that owns its Job, if any.

        The Workload is owned by its Job (Kueue sets the owner reference); the Job's owner
        is known from the Jobs' own watch events, else read once from the Job. Workloads
        of other people's Jobs cost one read each, the first time only."""
        meta = workload.get("metadata") or {}
        namespace = meta.get("namespace", "")
        job_ref = next(
            (
                ref
                for ref in meta.get("ownerReferences") or []
                if ref.get("kind") == "Job" and ref.get("apiVersion") == "batch/v1"
            ),
            None,
        )
        if job_ref is None or not namespace:
            return
        uid = str(job_ref.get("uid"))
        if uid not in self._job_owners:
            try:
                found = self.cluster.get_job(namespace, str(job_ref.get("name")))
            except Exception as exc:
                if not api_unavailable(exc):
                    raise
                # Not remembered: the Workload's next event, or the Job's, asks again.
                log.warning("%s: the API server did not answer (%s) for the Job of Workload "
                            "%s", namespace, type(exc).__name__, meta.get("name"))  # fmt: skip
                return
            if found is None or (found.get("metadata") or {}).get("uid") != uid:
                return  # gone, or replaced by another of that name: its own events follow
            labels = (found.get("metadata") or {}).get("labels") or {}
            if labels.get(MANAGED_BY[0]) != MANAGED_BY[1]:
                self._job_owners[uid] = None
            else:
                self.remember_job(found)
        known = self._job_owners.get(uid)
        if known is None:
            return
        _, name, owner_uid = known
        with self._event_pass(), self._pass(namespace, name):
            body = self.cluster.get_resource(namespace, name)
            if body is None or body["metadata"].get("uid") != owner_uid:
                return
            if body["metadata"].get("deletionTimestamp"):
                return
            self._reconcile(body)

    def forget(self, namespace: str, name: str) -> None:
        """The resource was deleted: no more looks, metrics or memory of it."""
        log.info(
            "%s/%s: deleted: its Jobs go with it (owner references); its artifacts stay in S3",
            namespace, name,
        )  # fmt: skip
        self.checks.schedule(namespace, name, None)
        metrics.forget(name, namespace)
        self._seen.pop((namespace, name), None)
        self._known.pop((namespace, name), None)
        self._failures.pop((namespace, name), None)
        with self._guard:
            self._locks.pop(f"{namespace}/{name}", None)

    # ---- one pass ----------------------------------------------------------------------
    def _next_check(self, decision: Decision) -> float | None:
        """When to look again: when the decision says, and, for a Job this pass made that
        is not waiting in a queue, at `pending_check_seconds`: the look the pass of its
        ADDED event would have scheduled (a Job of age 0), had `_no_news` not skipped it;
        a resource not at rest at `resync_seconds` at the latest (the safety resync,
        controller/handlers.py)."""
        due = [decision.requeue_after]
        if any(
            m["metadata"]["name"] in decision.jobs_seen and not m["spec"].get("suspend")
            for m in decision.create
        ):
            due.append(max(float(self.settings.pending_check_seconds), 1.0))
        if decision.status["phase"] not in TERMINAL:
            due.append(float(self.settings.resync_seconds))
        return min((d for d in due if d is not None), default=None)

    @staticmethod
    def _deleted_unfinished(job: dict[str, Any], body: dict[str, Any]) -> bool:
        labels = job["metadata"].get("labels") or {}
        current = (body.get("status") or {}).get("contentKey")
        status = job.get("status") or {}
        return labels.get(LABEL_CONTENT_KEY) == current and not status.get("succeeded")

    def _reconcile(self, body: dict[str, Any]) -> Decision | None:
        """The one reconcile (controller/reconcile.py), then what only the running operator
        does with its decision: the status patch, the metrics, the next check, the events."""
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        try:
            decision = reconcile_once(
                body, self.cluster, self.settings, self.stores, now=self.clock()
            )
        except Exception:
            metrics.RECONCILES.labels("error").inc()
            raise
        metrics.RECONCILES.labels("ok").inc()
        if len(self._deleting) > MAX_REMEMBERED_JOBS:
            self._deleting.clear()
        self._deleting.update((namespace, job) for job in decision.delete)
        patch = status_patch(dict(body.get("status") or {}), decision.status)
        if patch is not None:
            self.cluster.patch_status(namespace, name, patch)
        self._seen[(namespace, name)] = (str(meta.get("uid")), decision.jobs_seen)
        self._failures.pop((namespace, name), None)
        self._known[(namespace, name)] = str(meta.get("uid"))
        metrics.record(name, namespace, decision.status["phase"], decision.jobs_running)
        metrics.record_ap(name, namespace, decision.status)
        for stage, seconds in decision.durations:
            metrics.STAGE_SECONDS.labels(stage).observe(seconds)
        self.checks.schedule(namespace, name, self._next_check(decision))
        for event in decision.events:
            log.info("%s/%s: %s: %s", namespace, name, event.reason, event.message)
            try:
                self.events(body, event.type, event.reason, event.message)
            except Exception as exc:  # an event lost must not lose the pass's other work
                log.warning("%s/%s: event %s not posted: %s", namespace, name, event.reason, exc)
        return decision
