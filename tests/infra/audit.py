"""What the API server was asked to do to Jobs, from its audit log.

A Job's name is deterministic, so "no duplicate Job" cannot be checked by listing
Jobs: a second create is refused with 409 and there is never a second one to see.
The audit log records every request, refused or not; these read its Job writes.
Needs a cluster started with `audit=True` (devcluster/controlplane.py writes one
JSON line per request, in batches: `job_writes` waits out a batch first).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass

from devcluster.controlplane import LocalCluster

# kube-apiserver's batch audit backend flushes at least once a second
# (--audit-log-batch-max-wait, default 1s in k8s.io/apiserver's options).
FLUSH_SECONDS = 2.0


@dataclass(frozen=True)
class JobWrite:
    verb: str  # create | delete | ...
    name: str
    code: int  # the API server's answer: 201 created, 409 exists, 200 deleted
    user: str


@dataclass(frozen=True)
class Request:
    verb: str  # get | list | watch | create | patch | update | delete
    resource: str  # jobs, pods, bodyposeexports, ...
    subresource: str  # "" or status, log, ...
    name: str
    code: int
    user: str  # system:... for the cluster's own controllers and nodes


def lines(cluster: LocalCluster) -> int:
    """How many requests the log holds now (a mark for `requests`)."""
    time.sleep(FLUSH_SECONDS)
    with cluster.audit_log.open() as log:
        return sum(1 for _ in log)


def requests(cluster: LocalCluster, namespace: str, since: int = 0) -> list[Request]:
    """Every request a client made on an object of `namespace` after the first `since`
    lines: the cluster's own (the Job controller creating pods, the scheduler binding
    them; users `system:...`) are left out."""
    time.sleep(FLUSH_SECONDS)
    found = []
    with cluster.audit_log.open() as log:
        for index, line in enumerate(log):
            if index < since:
                continue
            event = json.loads(line)
            ref = event.get("objectRef") or {}
            user = event.get("user", {}).get("username", "")
            if (ref.get("namespace") == namespace and event.get("stage") == "ResponseComplete"
                    and not user.startswith("system:")):  # fmt: skip
                found.append(Request(
                    event["verb"], ref.get("resource", ""), ref.get("subresource", ""),
                    ref.get("name", ""), event.get("responseStatus", {}).get("code", 0), user,
                ))  # fmt: skip
    return found


def job_writes(cluster: LocalCluster, namespace: str) -> list[JobWrite]:
    """Every create and delete of a Job in `namespace`, in the order they were asked."""
    time.sleep(FLUSH_SECONDS)
    found = []
    with cluster.audit_log.open() as log:
        for line in log:
            event = json.loads(line)
            ref = event.get("objectRef") or {}
            if (event.get("verb") in ("create", "delete") and ref.get("resource") == "jobs"
                    and ref.get("namespace") == namespace and not ref.get("subresource")
                    and event.get("stage") == "ResponseComplete"):  # fmt: skip
                found.append(JobWrite(
                    event["verb"], ref.get("name", ""), event["responseStatus"]["code"],
                    event.get("user", {}).get("username", ""),
                ))  # fmt: skip
    return found


def created(writes: list[JobWrite], prefix: str = "") -> Counter[str]:
    """How many times each Job (whose name starts with `prefix`) was created (201)."""
    return Counter(w.name for w in writes if w.verb == "create" and w.code == 201
                   and w.name.startswith(prefix))  # fmt: skip


def deleted(writes: list[JobWrite], prefix: str = "") -> Counter[str]:
    return Counter(w.name for w in writes if w.verb == "delete" and w.code in (200, 202)
                   and w.name.startswith(prefix))  # fmt: skip
