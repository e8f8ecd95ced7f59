"""Act: carry out a decision. Jobs, the content index, and the status patch.

The status is patched only when it changed (a JSON merge patch; fields the new
status no longer has are removed with null), so a pass that changes nothing
writes nothing and wakes no watcher.
"""

from __future__ import annotations

import logging
from typing import Any

from bodypose_operator.controller.artifacts import ArtifactStore
from bodypose_operator.controller.cluster import Cluster
from bodypose_operator.controller.decide import Decision
from bodypose_operator.controller.job_digest import job_digest

log = logging.getLogger(__name__)


def apply_jobs(decision: Decision, cluster: Cluster, namespace: str) -> None:
    """Delete superseded Jobs, create the missing ones (create-if-absent), write the
    content-index entries of stages seen complete for the first time."""
    for name in decision.delete:
        cluster.delete_job(namespace, name)
    for manifest in decision.create:
        name = manifest["metadata"]["name"]
        if not cluster.create_job(manifest):
            # Another pass (or replica) made it first: its creation is not news, and what
            # it is now is not known here.
            decision.events[:] = [e for e in decision.events if e.job != name]
            decision.jobs_seen.pop(name, None)
        else:
            decision.jobs_seen[name] = job_digest(manifest)  # as its ADDED event shows it


def apply_index(decision: Decision, store: ArtifactStore) -> None:
    for index, manifest_uri in decision.index:
        store.record(index, manifest_uri)


def status_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any] | None:
    """The merge patch from `old` to `new` status, or None when they are the same."""
    if old == new:
        return None
    patch: dict[str, Any] = {k: v for k, v in new.items() if old.get(k) != v}
    patch.update({k: None for k in old if k not in new})
    return patch or None
