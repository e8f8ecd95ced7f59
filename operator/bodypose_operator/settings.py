"""Operator settings, from environment variables (set by the Helm chart)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from bodypose_operator import __version__
from bodypose_operator.api.admission import queue_name_problem
from bodypose_operator.api.backends import BACKENDS, BuildImage

EXPORTER_IMAGE = f"bodypose-export/exporter:{__version__}"
EXPORTER_GPU_IMAGE = f"bodypose-export/exporter-gpu:{__version__}"


def _names(text: str) -> tuple[str, ...]:
    """'a, b,,c' -> ('a', 'b', 'c')."""
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _true(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes")


def _seconds_or_none(env: dict[str, str], name: str, value: str) -> float | None:
    """A number of seconds above 0 from `name`; None when unset or empty. ValueError naming
    the variable and the Helm value it comes from."""
    text = env.get(name, "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < float("inf"):
        raise ValueError(
            f"{name} ({value}): a number of seconds above 0, or empty for the exporter's "
            f"default: got {text!r}"
        )
    return seconds


@dataclass(frozen=True)
class Settings:
    # The CPU exporter image: build Jobs of the backends whose row says BuildImage.CPU
    # (api/backends.py), and export Jobs unless export_image is set.
    exporter_image: str = EXPORTER_IMAGE
    # The GPU exporter image (on NVIDIA's TensorRT container): build Jobs of the
    # backends whose row says BuildImage.GPU.
    exporter_gpu_image: str = EXPORTER_GPU_IMAGE
    # The export Jobs' image, e.g. one built on TAO's deploy container (NVIDIA's .etlt
    # codec); None: exporter_image.
    export_image: str | None = None
    image_pull_policy: str = "IfNotPresent"
    # The GPU image's own pull policy; None: image_pull_policy.
    gpu_image_pull_policy: str | None = None
    # Secrets (in each resource's namespace) the Jobs' pods pull their images with.
    image_pull_secrets: tuple[str, ...] = ()
    active_deadline_seconds: int = 6 * 3600
    # Retries of a failed pod, with the Job controller's back-off (10 s, doubling): a
    # transient failure (S3 away, a node lost, an eviction) is retried, up to this bound;
    # the exporter's permanent exits fail the Job at once (builders/jobs.py).
    backoff_limit: int = 6
    ttl_seconds_after_finished: int | None = None
    scratch_size_limit: str = "20Gi"
    job_service_account: str | None = None
    # A Job pod unschedulable, or unable to pull its image, this long fails its stage.
    pending_deadline_seconds: int = 600
    # A Job that has not started this long gets one look at its pods (an image that
    # cannot be pulled, a pool with no room), reported in the status.
    pending_check_seconds: float = 15.0
    # The safety resync of a resource that is not Ready or Failed: events do the
    # work; this only covers one lost while the operator was down.
    resync_seconds: float = 600.0
    # Seconds each latency figure of a build Job may take on its node (`bpnet-build
    # --latency_budget`); None: the exporter's default (10 s). The figures' runs are
    # fewer on a slower node, never under 5; the manifest records both.
    latency_budget_seconds: float | None = None
    # kopf peering: a name makes replicas share it, one active, the others standing by.
    peering_name: str | None = None
    # A resource that names no credentials Secret uses the operator pod's own (the
    # default AWS chain): for a single-tenant cluster only (controller/credentials.py).
    ambient_s3_credentials: bool = False
    # Extra pod labels, e.g. the test executor's selector.
    extra_pod_labels: tuple[tuple[str, str], ...] = ()
    # Kueue: the LocalQueue of every Job whose resource names none (spec.queueName,
    # spec.exportQueueName); None: such Jobs start at once, as without Kueue.
    queue_name: str | None = None
    # Kueue: watch its Workloads and read a waiting Job's, to say why it waits (the
    # chart grants read on workloads.kueue.x-k8s.io with it). On whenever queue_name is.
    kueue: bool = False

    @property
    def queueing(self) -> bool:
        """Whether the operator watches and reads Kueue's Workloads."""
        return self.kueue or self.queue_name is not None

    @property
    def export_job_image(self) -> str:
        return self.export_image or self.exporter_image

    def build_image(self, backend: str) -> str:
        """The image of a build Job of `backend`: the one its row in api/backends.py names."""
        image = BACKENDS[backend].build_image
        return self.exporter_gpu_image if image is BuildImage.GPU else self.exporter_image

    def pull_policy(self, image: str) -> str:
        if image == self.exporter_gpu_image and self.gpu_image_pull_policy:
            return self.gpu_image_pull_policy
        return self.image_pull_policy

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
        queue = e.get("BODYPOSE_QUEUE_NAME", "").strip() or None
        problem = queue and queue_name_problem(queue, "BODYPOSE_QUEUE_NAME (jobs.queueName)")
        if problem:
            raise ValueError(f"{problem}: got {queue!r}")
        return cls(
            exporter_image=e.get("BODYPOSE_EXPORTER_IMAGE") or cls.exporter_image,
            exporter_gpu_image=e.get("BODYPOSE_EXPORTER_GPU_IMAGE") or cls.exporter_gpu_image,
            export_image=e.get("BODYPOSE_EXPORT_IMAGE") or None,
            image_pull_policy=e.get("BODYPOSE_IMAGE_PULL_POLICY") or cls.image_pull_policy,
            gpu_image_pull_policy=e.get("BODYPOSE_EXPORTER_GPU_IMAGE_PULL_POLICY") or None,
            image_pull_secrets=_names(e.get("BODYPOSE_IMAGE_PULL_SECRETS", "")),
            active_deadline_seconds=int(
                e.get("BODYPOSE_ACTIVE_DEADLINE_SECONDS", cls.active_deadline_seconds)
            ),
            backoff_limit=int(e.get("BODYPOSE_BACKOFF_LIMIT", cls.backoff_limit)),
            scratch_size_limit=e.get("BODYPOSE_SCRATCH_SIZE_LIMIT", cls.scratch_size_limit),
            job_service_account=e.get("BODYPOSE_JOB_SERVICE_ACCOUNT") or None,
            pending_deadline_seconds=int(
                e.get("BODYPOSE_PENDING_DEADLINE_SECONDS", cls.pending_deadline_seconds)
            ),
            pending_check_seconds=float(
                e.get("BODYPOSE_PENDING_CHECK_SECONDS", cls.pending_check_seconds)
            ),
            resync_seconds=float(e.get("BODYPOSE_RESYNC_SECONDS", cls.resync_seconds)),
            latency_budget_seconds=_seconds_or_none(
                e, "BODYPOSE_LATENCY_BUDGET_SECONDS", "jobs.latencyBudgetSeconds"
            ),
            peering_name=e.get("BODYPOSE_PEERING") or None,
            ambient_s3_credentials=_true(e.get("BODYPOSE_AMBIENT_S3_CREDENTIALS", "")),
            extra_pod_labels=labels,
            queue_name=queue,
            kueue=_true(e.get("BODYPOSE_KUEUE", "")),
        )
