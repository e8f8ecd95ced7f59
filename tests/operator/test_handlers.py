"""kopf's handlers (controller/handlers.py) on kopf's event loop: an event that is no news
ends there; one that is news runs its pass on the executor, and a Job event whose owner's
pass is running waits for that pass and is decided against what it saw.

The handlers are called as kopf calls an async handler (awaited on the event loop, with
`memo`), over the service of tests/operator/test_service.py (a real S3 server, the
in-memory cluster) and a real thread pool that counts what it is handed. The real
operator process runs them against a real API server in tests/operator/test_on_api_server.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import kopf

from bodypose_operator.controller import handlers
from bodypose_operator.controller.job_digest import job_digest
from bodypose_operator.settings import Settings
from tests.operator.test_service import ServedCluster, job_event, service
from tests.support.operator_fakes import body, count_passes


class CountingPool(ThreadPoolExecutor):
    """kopf's executor, counting the work handed to it."""

    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.handed = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.handed += 1
        return super().submit(fn, *args, **kwargs)


def memo_of(cluster: ServedCluster) -> tuple[kopf.Memo, CountingPool]:
    svc, _ = service(cluster, Settings(pending_check_seconds=3600, resync_seconds=7200))
    pool = CountingPool()
    return kopf.Memo(service=svc, executor=pool), pool


def test_a_resource_event_that_is_no_news_ends_on_the_loop(bucket: str) -> None:
    cluster = ServedCluster(body(bucket))
    memo, pool = memo_of(cluster)
    resource = cluster.resource
    assert resource is not None

    async def events() -> None:
        # First sight: a pass, in a thread; its status says the generation it saw.
        await handlers.on_resource(type="ADDED", body=resource, memo=memo)
        assert pool.handed == 1 and resource["status"]["observedGeneration"] == 3
        # That patch's own event, a label, a listing: nothing, and no thread.
        await handlers.on_resource(type="MODIFIED", body=resource, memo=memo)
        resource["metadata"]["labels"] = {"team": "vision"}
        await handlers.on_resource(type="MODIFIED", body=resource, memo=memo)
        await handlers.on_resource(type=None, body=resource, memo=memo)
        assert pool.handed == 1
        # An edit: a pass, and the status follows the spec.
        resource["spec"]["targets"] = [{"name": "cpu", "backend": "onnxruntime"}]
        resource["metadata"]["generation"] = 4
        await handlers.on_resource(type="MODIFIED", body=resource, memo=memo)
        assert pool.handed == 2 and resource["status"]["observedGeneration"] == 4
        # Deleted: forgotten in a thread (it logs and drops the resource's checks).
        await handlers.on_resource(type="DELETED", body=resource, memo=memo)
        assert pool.handed == 3 and ("ml", "demo") not in memo.service.checks._timers

    try:
        asyncio.run(events())
    finally:
        memo.service.checks.cancel_all()
        pool.shutdown()


def test_a_job_event_waits_for_its_owners_running_pass_and_is_decided_after_it(
    bucket: str,
) -> None:
    cluster = ServedCluster(body(bucket))
    memo, pool = memo_of(cluster)
    svc = memo.service
    svc.reconcile(cluster.resource)
    export = cluster.job("export").metadata.name
    event = job_event(cluster, export)
    passes = count_passes(svc)

    async def events() -> None:
        # The listing notes the Job's owner (for its Workload's events), no thread.
        svc._job_owners.clear()
        await handlers.on_job(type=None, body=event, memo=memo)
        assert svc._job_owners[f"uid-{export}"] == ("ml", "demo", "1234-uid")
        # The Job as the last pass saw it: no news, no thread, no pass.
        await handlers.on_job(type="MODIFIED", body=event, memo=memo)
        assert pool.handed == 0 and passes == []

        # A pass over the owner runs (its lock held) and will have seen the Job
        # succeed: the same event is not judged against the pass before it, but waits
        # for this one and is news against what it saw (the Job is not done any more).
        succeeded = {**event, "status": {"succeeded": 1}}
        assert job_digest(succeeded) != job_digest(event)
        lock = svc._lock("ml", "demo")
        lock.acquire()
        waiting = asyncio.ensure_future(handlers.on_job(type="MODIFIED", body=event, memo=memo))
        await asyncio.sleep(0.2)
        assert pool.handed == 1 and not waiting.done()  # in its thread, at the lock
        uid, seen = svc._seen[("ml", "demo")]
        svc._seen[("ml", "demo")] = (uid, {**seen, export: job_digest(succeeded)})
        lock.release()
        await asyncio.wait_for(waiting, 10)
        assert passes == ["demo"]  # decided after the running pass: news, a pass

        # A Job's deletion is always a pass (the Job is made again).
        await handlers.on_job(type="DELETED", body=job_event(cluster, export), memo=memo)
        assert pool.handed == 2 and passes == ["demo", "demo"]

    try:
        asyncio.run(events())
    finally:
        svc.checks.cancel_all()
        pool.shutdown()
