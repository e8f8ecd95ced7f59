"""kopf handlers for BodyPoseExport: they only observe, decide and record.

Every trigger (create, update, resume, a periodic timer) runs the same
level-triggered `reconcile` pass; delete needs no handler of ours because the
Jobs carry owner references (Kubernetes' garbage collector removes them) and
artifacts in S3 are deliberately kept. Followed: kopf's docs on handlers,
timers, `patch` and progress storage (kopf.readthedocs.io).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import kopf
from kubernetes import config as kube_config

from bodypose_operator.api.v1alpha1 import GROUP, PLURAL, VERSION
from bodypose_operator.controller import metrics
from bodypose_operator.controller.cluster import ClusterView
from bodypose_operator.controller.reconcile import reconcile
from bodypose_operator.settings import Settings

SETTINGS = Settings.from_env()
_cluster: ClusterView | None = None
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()
Log = logging.Logger | logging.LoggerAdapter[Any]


def _view() -> ClusterView:
    global _cluster
    if _cluster is None:
        try:
            kube_config.load_incluster_config()  # type: ignore[no-untyped-call]
        except kube_config.ConfigException:
            kube_config.load_kube_config()  # type: ignore[no-untyped-call]
        _cluster = ClusterView()
    return _cluster


def _lock(uid: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(uid, threading.Lock())


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Our status is a structural schema: kopf's own bookkeeping goes to annotations.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 60


def _run(body: kopf.Body, patch: kopf.Patch, logger: Log) -> None:
    meta = body["metadata"]
    with _lock(meta["uid"]):
        try:
            outcome = reconcile(dict(body), _view(), SETTINGS)
        except Exception:
            metrics.RECONCILES.labels("error").inc()
            raise
        metrics.RECONCILES.labels("ok").inc()
        patch.status.update(outcome.status)
        metrics.record(
            meta["name"], meta["namespace"], outcome.status["phase"], outcome.jobs_running
        )
        for stage, seconds in outcome.durations:
            metrics.STAGE_SECONDS.labels(stage).observe(seconds)
        for type_, reason, message in outcome.events:
            # kopf.event, not kopf.info: posting.level (WARNING, to keep kopf's own
            # handler chatter out of the events) would drop our Normal events too.
            kopf.event(body, type=type_, reason=reason, message=message)
            logger.info("%s: %s", reason, message)


@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
@kopf.on.resume(GROUP, VERSION, PLURAL)
def on_change(body: kopf.Body, patch: kopf.Patch, logger: Log, **_: Any) -> None:
    _run(body, patch, logger)


@kopf.timer(GROUP, VERSION, PLURAL, interval=SETTINGS.resync_seconds, sharp=False)
def resync(body: kopf.Body, patch: kopf.Patch, logger: Log, **_: Any) -> None:
    _run(body, patch, logger)


@kopf.on.delete(GROUP, VERSION, PLURAL, optional=True)
def on_delete(body: kopf.Body, logger: Log, **_: Any) -> None:
    meta = body["metadata"]
    metrics.forget(meta["name"], meta["namespace"])
    logger.info("deleted: its Jobs go with it (owner references); its artifacts stay in S3")
