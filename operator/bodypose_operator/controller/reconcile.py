"""One reconcile of one resource: observe, decide, act on the Jobs and the index.

The status patch, events and metrics are the caller's (controller/service.py
for the operator; the tests read the returned decision).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from bodypose_operator.controller.act import apply_index, apply_jobs
from bodypose_operator.controller.cluster import Cluster
from bodypose_operator.controller.credentials import ResourceStores
from bodypose_operator.controller.decide import Decision, decide
from bodypose_operator.controller.observe import observe
from bodypose_operator.settings import Settings


def reconcile(
    body: dict[str, Any],
    cluster: Cluster,
    settings: Settings,
    stores: ResourceStores | None = None,
    now: dt.datetime | None = None,
) -> Decision:
    stores = stores if stores is not None else ResourceStores(cluster, settings)
    facts = observe(body, cluster, stores, settings, now)
    decision = decide(body, facts, settings)
    apply_jobs(decision, cluster, body["metadata"]["namespace"])
    if facts.store is not None:
        apply_index(decision, facts.store)
    return decision
