"""Why a Job waits in its Kueue queue, in Kueue's words. Pure functions, no I/O.

Kueue keeps a Workload per Job it manages and says on it where the Job stands
(apis/kueue/v1beta2/workload_types.go): `QuotaReserved` False while the Job waits
for quota, with Kueue's reason (`Pending`, `Inadmissible`) and its message
("couldn't assign flavors to pod set main: insufficient unused quota for
nvidia.com/gpu in flavor a100, 1 more needed"); `QuotaReserved` True then
`Admitted` True once its admission checks pass, after which Kueue unsuspends the
Job; `Evicted` True when it was preempted (or deactivated) and suspended again.
The operator quotes those conditions; it never decides admission itself.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

QUOTA_RESERVED = "QuotaReserved"
ADMITTED = "Admitted"
EVICTED = "Evicted"


@dataclass(frozen=True)
class QueueWait:
    """A waiting Job's place in its queue: the status' `queue` entry and one sentence."""

    queue: dict[str, Any]  # the status' QueueStatus
    message: str  # "Queued in <queue>: ..."


#: Kueue's reason on QuotaReserved=False for a Workload no quota will ever admit as things
#: stand: its LocalQueue or ClusterQueue is missing or stopped (quota that is merely used
#: up says `Pending`, and is waited for without a deadline).
INADMISSIBLE = "Inadmissible"


@dataclass(frozen=True)
class Stuck:
    """A queued Job that no quota will start as things stand: why, and since when."""

    reason: str  # WorkloadDeactivated | Inadmissible | NoWorkload
    message: str
    since: dt.datetime | None  # None: since the Job was made


def _since(cond: dict[str, Any]) -> dt.datetime | None:
    text = cond.get("lastTransitionTime")
    if not isinstance(text, str):
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def stuck(workload: dict[str, Any] | None, unread: str | None) -> Stuck | None:
    """Why a queued Job waits for something other than quota, or None while it waits its
    turn (Kueue's `Pending`) or is admitted. Such a wait runs against the pending deadline:
    a Workload Kueue deactivated (`spec.active` false), one it calls inadmissible (a
    LocalQueue or ClusterQueue missing or stopped, in Kueue's message), or no Workload at
    all (Kueue not installed, or not managing the namespace; `unread` says why it was not
    read)."""
    if workload is None:
        return Stuck(
            "NoWorkload",
            unread
            or "Kueue made no Workload for the Job: is Kueue installed, and does it "
            "manage this namespace?",
            None,
        )
    conditions = _conditions(workload)
    if (workload.get("spec") or {}).get("active") is False:
        evicted = conditions.get(EVICTED)
        detail = f": {_quote(evicted)}" if evicted else ""
        return Stuck(
            "WorkloadDeactivated",
            f"Workload {(workload.get('metadata') or {}).get('name', '')} is deactivated "
            f"(spec.active false); Kueue admits it only once it is active again{detail}",
            _since(evicted) if evicted else None,
        )
    reserved = conditions.get(QUOTA_RESERVED)
    inadmissible = (reserved or {}).get("status") == "False" and (reserved or {}).get(
        "reason"
    ) == INADMISSIBLE
    if reserved is not None and inadmissible:
        return Stuck(INADMISSIBLE, _quote(reserved), _since(reserved))
    return None


def _conditions(workload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = (workload.get("status") or {}).get("conditions") or []
    return {c["type"]: c for c in found if isinstance(c, dict) and "type" in c}


def _quote(cond: dict[str, Any]) -> str:
    """`QuotaReserved=False (Pending): <Kueue's message>`."""
    text = f"{cond['type']}={cond.get('status', 'Unknown')} ({cond.get('reason') or '?'})"
    message = str(cond.get("message") or "").strip()
    return f"{text}: {message}" if message else text


def queue_wait(
    queue: str, job: str, workload: dict[str, Any] | None, unread: str | None
) -> QueueWait:
    """Where the suspended Job `job`, labelled with `queue`, stands: from its Workload, or
    why that is not known (`unread`: it could not be read; neither: Kueue has not made
    one yet)."""
    entry: dict[str, Any] = {"name": queue, "jobName": job}
    head = f"Queued in {queue}"
    if workload is None:
        why = unread or "waiting for Kueue to make the Job's Workload"
        return QueueWait(entry, f"{head}: Job {job} is suspended until Kueue admits it; {why}")
    entry["workload"] = str((workload.get("metadata") or {}).get("name", ""))
    off = stuck(workload, unread)
    if off is not None and off.reason == "WorkloadDeactivated":
        entry.update(condition="Active", status="False", reason=off.reason)
        return QueueWait(entry, f"{head}: {off.message}")
    conditions = _conditions(workload)
    admitted, reserved = conditions.get(ADMITTED), conditions.get(QUOTA_RESERVED)
    if admitted is not None and admitted.get("status") == "True":
        quoted, tail = admitted, f"; Kueue starts Job {job}"
    elif reserved is not None:
        quoted, tail = reserved, ""
        if reserved.get("status") == "True" and admitted is not None:
            tail = f"; {_quote(admitted)}"  # quota held, admission checks pending
    else:
        return QueueWait(entry, f"{head}: Workload {entry['workload']} not yet considered by Kueue")
    entry.update(
        condition=quoted["type"],
        status=quoted.get("status"),
        reason=quoted.get("reason"),
        message=quoted.get("message"),
    )
    evicted = conditions.get(EVICTED)
    if evicted is not None and evicted.get("status") == "True" and quoted is not admitted:
        tail += f"; evicted before: {_quote(evicted)}"
    return QueueWait({k: v for k, v in entry.items() if v}, f"{head}: {_quote(quoted)}{tail}")
