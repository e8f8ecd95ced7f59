"""The facts one reconcile decides from: what observe found, in S3 and on the API server.

Written by observe (controller/observe.py), read by decide and the stage states;
plain data, so that decide is a pure function of it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from bodypose_operator.api.spec import BodyPoseExportSpec
from bodypose_operator.controller import pods
from bodypose_operator.controller.artifacts import ArtifactStore
from bodypose_operator.controller.cpu_class import PoolClass


@dataclass
class StageFacts:
    """One stage (the export, or one target's build) as S3 and the API server see it.

    `job` is the Job of the stage's spec as it is now (the one `desired` names), never one
    made for an earlier spec of the stage: those are in `Facts.obsolete`."""

    manifest_uri: str
    index: str
    #: The Job this stage's spec asks for (created when the stage has neither a manifest
    #: nor this Job).
    desired: dict[str, Any]
    job: Any | None = None
    manifest: dict[str, Any] | None = None
    reused: bool = False
    report: pods.PodReport | None = None  # None: the pods were not read
    #: A queued Job's Kueue Workload, read while the Job is suspended; None: none yet, or
    #: not read (then `workload_unread` says why).
    workload: dict[str, Any] | None = None
    workload_unread: str | None = None
    #: A target's identity now (`naming.target_identity`); None for the export.
    identity: str | None = None
    #: The CPU class its int8 artifact is built for, where the backend's depends on it.
    int8_class: PoolClass | None = None
    #: Failed attempts the status already reports (its `retries`): more than that on a
    #: finished Job are news, whose last reason its pods tell.
    seen_retries: int = 0
    #: The `lastFailure` the status shows for those: kept while no attempt failed since.
    seen_failure: str | None = None
    #: Why a manifest found was not taken (another identity, or an index entry whose
    #: artifacts are not what its manifest records), for an event.
    ignored: str | None = None


@dataclass
class Facts:
    now: dt.datetime
    spec: BodyPoseExportSpec | None = None
    invalid: str | None = None  # why the spec is refused
    model_missing: str | None = None
    #: (reason, message): S3 or the credentials said no; retrying soon will not help.
    refused: tuple[str, str] | None = None
    #: True when the refusal was about the model (before any stage was read).
    refused_model: bool = False
    s3_unreachable: str | None = None
    #: The store this resource's S3 reads used (its credentials'), for act's writes.
    store: ArtifactStore | None = None
    key: str | None = None
    prefix: str | None = None
    #: Jobs made for what the spec no longer asks for and not succeeded: an older content
    #: key's still running, or, under the current key, another spec of a stage (a
    #: target moved, renamed, removed or rescheduled) running or failed. Deleted.
    obsolete: list[Any] = field(default_factory=list)
    running: int = 0
    export: StageFacts | None = None
    targets: dict[str, StageFacts] = field(default_factory=dict)
