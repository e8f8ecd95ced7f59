"""Operator settings, from environment variables (set by the Helm chart)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    exporter_image: str = "bodypose-export/exporter:0.1.0"
    image_pull_policy: str = "IfNotPresent"
    active_deadline_seconds: int = 6 * 3600
    backoff_limit: int = 1
    ttl_seconds_after_finished: int | None = None
    scratch_size_limit: str = "20Gi"
    job_service_account: str | None = None
    # A build pod unschedulable this long fails its target (no matching nodes).
    pending_deadline_seconds: int = 600
    resync_seconds: float = 10.0
    # Extra pod labels, e.g. the test executor's selector.
    extra_pod_labels: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = dict(os.environ if env is None else env)
        labels = tuple(
            (k.strip(), v.strip())
            for k, _, v in (
                item.partition("=") for item in e.get("BODYPOSE_EXTRA_POD_LABELS", "").split(",")
            )
            if k.strip() and v
        )
        return cls(
            exporter_image=e.get("BODYPOSE_EXPORTER_IMAGE", cls.exporter_image),
            image_pull_policy=e.get("BODYPOSE_IMAGE_PULL_POLICY", cls.image_pull_policy),
            active_deadline_seconds=int(
                e.get("BODYPOSE_ACTIVE_DEADLINE_SECONDS", cls.active_deadline_seconds)
            ),
            backoff_limit=int(e.get("BODYPOSE_BACKOFF_LIMIT", cls.backoff_limit)),
            scratch_size_limit=e.get("BODYPOSE_SCRATCH_SIZE_LIMIT", cls.scratch_size_limit),
            job_service_account=e.get("BODYPOSE_JOB_SERVICE_ACCOUNT") or None,
            pending_deadline_seconds=int(
                e.get("BODYPOSE_PENDING_DEADLINE_SECONDS", cls.pending_deadline_seconds)
            ),
            resync_seconds=float(e.get("BODYPOSE_RESYNC_SECONDS", cls.resync_seconds)),
            extra_pod_labels=labels,
        )
