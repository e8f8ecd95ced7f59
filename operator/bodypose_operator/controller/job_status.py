"""What a Job's own status says: ended or not, suspended, queued, started, how old.

Read by observe (which Jobs run, whose pods are worth reading) and by the stage
states (controller/stage_state.py); from the Job object alone, no pod and no call.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from bodypose_operator.api.queues import QUEUE_LABEL


def job_state(job: Any) -> str:
    """Succeeded | Failed | Active, from the Job's own status."""
    st = job.status
    if st.succeeded:
        return "Succeeded"
    for cond in st.conditions or []:
        if cond.type == "Failed" and cond.status == "True":
            return "Failed"
    return "Active"


def job_queue(job: Any) -> str | None:
    """The Kueue LocalQueue the Job names, or None."""
    return (job.metadata.labels or {}).get(QUEUE_LABEL)


def job_suspended(job: Any) -> bool:
    """Suspended (spec.suspend): a queued Job Kueue has not admitted, or has preempted."""
    return bool(getattr(job.spec, "suspend", None))


def job_age(job: Any, now: dt.datetime) -> float:
    """Seconds the Job has been trying to start: since the Job controller started it
    (status.startTime, which it resets whenever the Job is resumed from suspension),
    else since it was made. A queued Job that Kueue has just resumed, not yet started by
    the Job controller, is 0 s old: its time in the queue is no time spent starting."""
    started = getattr(job.status, "start_time", None)
    if started is None and job_queue(job) is not None:
        return 0.0
    since = started or job.metadata.creation_timestamp
    return 0.0 if since is None else (now - since).total_seconds()


def job_started(job: Any) -> bool:
    """A pod of the Job is ready (running) or has succeeded: nothing is stuck before it.
    Failed pods do not count: a retry that cannot start is what a check must find."""
    st = job.status
    return bool(st.ready or st.succeeded)


def waiting_in_queue(job: Any) -> bool:
    """A Job of ours that waits in a Kueue queue: queued, suspended, not finished."""
    return job_queue(job) is not None and job_suspended(job) and job_state(job) == "Active"
