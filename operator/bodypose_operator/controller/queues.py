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
