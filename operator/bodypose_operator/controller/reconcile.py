"""One reconcile of one resource: observe, decide, act on the Jobs and the content index.

The one sequence the operator runs (controller/service.py calls it for every
trigger) and the tests drive. The status patch, events and metrics are the
caller's: the service applies them from the returned decision, the tests read it.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from bodypose_operator.controller.act import apply_index, apply_jobs
from bodypose_operator.controller.artifacts import S3Refused, S3Unreachable
from bodypose_operator.controller.cluster import Cluster
from bodypose_operator.controller.credentials import ResourceStores
from bodypose_operator.controller.decide import S3_RETRY_SECONDS, Decision, decide
from bodypose_operator.controller.facts import Facts
from bodypose_operator.controller.job_digest import job_digest, job_name
from bodypose_operator.controller.observe import observe
from bodypose_operator.settings import Settings

log = logging.getLogger("bodypose_operator")


def reconcile(
    body: dict[str, Any],
    cluster: Cluster,
    settings: Settings,
    stores: ResourceStores | None = None,
    now: dt.datetime | None = None,
) -> Decision:
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    stores = stores if stores is not None else ResourceStores(cluster, settings)
    facts = observe(body, cluster, stores, settings, now)
    decision = decide(body, facts, settings)
    decision.jobs_seen = _jobs_seen(facts)
    apply_jobs(decision, cluster, namespace)
    if facts.store is not None:
        try:
            apply_index(decision, facts.store)
        except (S3Unreachable, S3Refused) as exc:
            # The index only spares another resource a build; the pass's Jobs and
            # status stand, and the entry is written on a later look.
            log.warning("%s/%s: content index not written: %s", namespace, name, exc)
            decision.look_again(S3_RETRY_SECONDS)
    return decision


def _jobs_seen(facts: Facts) -> dict[str, Any]:
    """What this pass saw of each Job of the resource it listed (controller/job_digest.py)."""
    stages = [facts.export, *facts.targets.values()]
    jobs = [stage.job for stage in stages if stage is not None and stage.job is not None]
    return {job_name(job): job_digest(job) for job in [*jobs, *facts.obsolete]}
