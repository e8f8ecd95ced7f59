"""A convergence campaign on the real local cluster, in the style of Acto (Gu et al., SOSP 2023).

A seeded random sequence of spec edits of one BodyPoseExport (targets added,
removed, renamed, moved to another pool, their backend changed; resolution,
precision, gates, calibration method changed; scheduling fields changed; a
target made impossible, then fixed), some of them with a fault injected while
their work runs (the operator SIGKILLed, a Job or a pod deleted, MinIO stopped
for a while, the API server restarted). After each step the campaign waits for
quiescence (no Reconciling condition, no active Job of the resource, held for a
few seconds; a bounded wait that reports "did not converge in N s" rather than
hanging) and then checks the invariant:

- `generation`: status.observedGeneration == metadata.generation;
- `targets`: the status lists exactly the spec's targets;
- `identity`: every Ready target carries `identity` == target_identity(the target
  now, its build image, its int8Class), its engineUri lies in a folder
  `.../targets/<target>/<identity>/` (its own, or that of a target of the same identity
  whose artifact it reuses), and the manifest there records `targetIdentity` == that
  identity;
- `artifact`: what a Ready target's artifact records matches the target now (the
  manifest's backend; the pool the Job named in the status ran on), which holds
  for an operator with or without identities;
- `obsolete-job`: no unfinished Job of the resource belongs to another content key,
  a target no longer in the spec, or an identity no target has now;
- `kstatus`: cli-utils' kstatus says Current (every target can work and is
  Ready), or Failed with failed targets that are exactly those the spec makes
  impossible now (a nodeSelector no node matches, a backend the pool's image lacks);
- `secrets`: neither the model key nor the S3 secret key (as written or base64) is in
  the namespace's events, the resource's status or the operator's log.

A divergence is printed with the seed and the step, so that it replays:
`python -m tests.support.convergence --steps K --seed S` regenerates the same
steps (the generator reads only the seed and its own model of the spec, never
the cluster). Run on its own, the module starts a local cluster, MinIO and the
operator of this checkout and prints one summary line:

    campaign seed=S steps=N divergences=D converge median=Xs p95=Ys

tests/e2e/test_convergence.py runs a short campaign (fixed seed, a dozen steps)
on the session cluster; `make soak STEPS=200 SEED=...` a long one.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import datetime as dt
import importlib
import json
import math
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devcluster.controlplane import LocalCluster
from devcluster.minio import MinioProcess
from devcluster.operator_process import OperatorProcess, start_operator

GROUP, VERSION, PLURAL = "bodypose.dev", "v1alpha1", "bodyposeexports"
RESOURCE = "campaign"
BUCKET = "campaign"
POOL_LABEL = "bodypose.dev/pool"
#: The pools of the local cluster's kwok nodes; GPU pools need the GPU toleration.
POOLS = ("cpu", "t4", "a100", "l4")
GPU_POOLS = frozenset({"t4", "a100", "l4"})
#: A pool no node is in: a target there never schedules (the pending deadline fails it).
NOWHERE = "nowhere"
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
SPOT_TOLERATION = {"key": "example.com/spot", "operator": "Exists", "effect": "NoSchedule"}
#: Backends a target can be switched to. `tensorrt` builds run the CPU exporter image
#: here (no GPU image on these machines), so they fail at once for want of TensorRT:
#: a target the spec makes impossible, as the nowhere pool does.
WORKING_BACKEND = "onnxruntime"
FAILING_BACKEND = "tensorrt"
#: Input sizes (height, width); the first is the cheapest and the starting one.
RESOLUTIONS = ((224, 320), (256, 320), (224, 352), (256, 384))
GATES = (None, 0.99, 0.995)
CAL_METHODS = ("entropy", "minmax", "percentile")
LABEL_IDENTITY = "bodypose.dev/identity"
LABEL_TARGET = "bodypose.dev/target"
LABEL_CONTENT_KEY = "bodypose.dev/content-key"

#: Edits that must each appear in a short campaign, and the faults.
REQUIRED_EDITS = ("add", "remove", "rename", "move", "backend", "scheduling", "impossible",
                  "resolution")  # fmt: skip
REQUIRED_FAULTS = ("kill-operator", "delete-job", "delete-pod", "minio-outage")
#: Weights of the edits once the required ones are done (long campaigns).
EDIT_WEIGHTS = {
    "add": 5, "remove": 4, "rename": 4, "move": 6, "backend": 4, "scheduling": 4,
    "impossible": 2, "resolution": 2, "precision": 1, "gates": 1, "calibration": 1,
}  # fmt: skip
#: "delete-pod" was first left out: the local cluster's executor (devcluster/executor/,
#: playing the kubelet) killed a deleted pod's process but never removed the pod, which
#: stayed Terminating for ever, so its Job (podReplacementPolicy Failed, with the
#: operator's pod failure policy) never made another. Found by this campaign (seed 8, a pod
#: deleted as its build started); the executor now finishes the deletion as a kubelet does.
FAULTS = ("kill-operator", "delete-job", "delete-pod", "minio-outage", "apiserver-restart")


# ---------------------------------------------------------------------------------------
# The generator's model of the spec: what the campaign asks for, and what it expects.


@dataclass
class TargetModel:
    name: str
    pool: str
    backend: str = WORKING_BACKEND
    spot: bool = False  # an extra toleration (a scheduling field: no new artifact)
    cpu_request: str | None = None  # resources.requests.cpu (scheduling too)
    home: str = ""  # the pool it had before it was made impossible

    def to_spec(self) -> dict[str, Any]:
        gpu = self.pool in GPU_POOLS
        tolerations = [GPU_TOLERATION] if gpu else []
        if self.spot:
            tolerations.append(SPOT_TOLERATION)
        resources: dict[str, Any] = {}
        if gpu:
            resources["limits"] = {"nvidia.com/gpu": "1"}
        if self.cpu_request:
            resources["requests"] = {"cpu": self.cpu_request, "memory": "2Gi"}
        spec: dict[str, Any] = {"name": self.name, "nodeSelector": {POOL_LABEL: self.pool},
                                "backend": self.backend}  # fmt: skip
        if tolerations:
            spec["tolerations"] = tolerations
        if resources:
            spec["resources"] = resources
        return spec

    @property
    def impossible(self) -> str | None:
        """Why this target cannot work as the spec stands, or None."""
        if self.pool == NOWHERE:
            return "no node"
        if self.backend == FAILING_BACKEND:
            return "no TensorRT"
        return None


@dataclass
class SpecModel:
    targets: list[TargetModel]
    resolution: tuple[int, int] = RESOLUTIONS[0]
    precision: str = "fp32"
    min_cosine: float | None = None
    cal_method: str = "entropy"
    next_name: int = 1
    #: (content, pool, backend) the campaign has already caused a build of: a guess of
    #: which edits make work (to aim faults at running builds), never a check.
    built: set[tuple[Any, ...]] = field(default_factory=set)

    def content(self) -> tuple[Any, ...]:
        cal = self.cal_method if self.precision == "int8" else None
        return (self.resolution, self.precision, self.min_cosine, cal)

    def fresh_name(self) -> str:
        name = f"tg{self.next_name}"
        self.next_name += 1
        return name

    def to_spec(self, bucket: str) -> dict[str, Any]:
        height, width = self.resolution
        spec: dict[str, Any] = {
            "model": {"uri": f"s3://{bucket}/models/bpnet.tlt",
                      "keySecretRef": {"name": "bpnet-key", "key": "key"}},
            "input": {"height": height, "width": width},
            "precision": self.precision,
            "targets": [t.to_spec() for t in self.targets],
            "output": {"uri": f"s3://{bucket}/artifacts",
                       "credentialsSecretRef": {"name": "s3-credentials"}},
        }  # fmt: skip
        if self.precision == "int8":
            images = f"s3://{bucket}/calibration/images"
            spec["calibration"] = {
                "imagesUri": images,
                "batches": 2,
                "batchSize": 2,
                "method": self.cal_method,
            }
        if self.min_cosine is not None:
            spec["verification"] = {"minCosine": self.min_cosine}
        return spec

    def expected_failures(self) -> dict[str, str]:
        return {t.name: why for t in self.targets if (why := t.impossible)}

    def would_build(self, pool: str, backend: str = WORKING_BACKEND) -> bool:
        return (self.content(), pool, backend) not in self.built

    def note_built(self) -> None:
        for t in self.targets:
            if t.impossible is None:
                self.built.add((self.content(), t.pool, t.backend))


def initial_model() -> SpecModel:
    model = SpecModel(targets=[])
    model.targets = [TargetModel(model.fresh_name(), "cpu"), TargetModel(model.fresh_name(), "t4")]
    return model


@dataclass(frozen=True)
class Step:
    number: int
    edit: str
    description: str
    fault: str | None = None
    fault_seconds: float = 0.0  # minio-outage: how long S3 is away

    def describe(self) -> str:
        text = f"{self.edit}: {self.description}"
        if self.fault:
            text += f" + {self.fault}"
            if self.fault == "minio-outage":
                text += f" {self.fault_seconds:.0f}s"
        return text


class Generator:
    """Seeded steps over a SpecModel. Coverage first: the required edits (and faults,
    aimed at edits that make a build) come before the weighted random ones, so a short
    campaign of any seed tries each; a target made impossible is fixed by the next step."""

    def __init__(self, seed: int, allow_apiserver_restart: bool = True) -> None:
        self.rng = random.Random(seed)
        self.model = initial_model()
        self.model.note_built()
        self.edits_left = list(REQUIRED_EDITS)
        self.faults_left = list(REQUIRED_FAULTS)
        self.faults = [f for f in FAULTS if allow_apiserver_restart or f != "apiserver-restart"]
        self.number = 0

    # Each edit: (feasible?, apply -> (description, makes a build?)).
    def _feasible(self, edit: str) -> bool:
        m = self.model
        possible = [t for t in m.targets if t.impossible is None]
        if edit == "remove":
            return len(m.targets) > 1
        if edit == "add":
            return len(m.targets) < 4
        if edit in ("move", "impossible"):
            return bool(possible) and not any(t.pool == NOWHERE for t in m.targets)
        if edit == "calibration":
            return m.precision == "int8"
        return bool(m.targets)

    def _apply(self, edit: str) -> tuple[str, bool]:
        m, rng = self.model, self.rng
        if edit == "fix":
            t = next(t for t in m.targets if t.pool == NOWHERE)
            t.pool = t.home
            return f"{t.name} back to {t.pool}", m.would_build(t.pool, t.backend)
        if edit == "add":
            free = [p for p in POOLS if m.would_build(p)] or list(POOLS)
            t = TargetModel(m.fresh_name(), rng.choice(free))
            m.targets.append(t)
            return f"{t.name} on {t.pool}", m.would_build(t.pool)
        if edit == "remove":
            t = m.targets.pop(rng.randrange(len(m.targets)))
            return f"{t.name} ({t.pool})", False
        if edit == "rename":
            t = rng.choice(m.targets)
            old, t.name = t.name, m.fresh_name()
            return f"{old} -> {t.name}", False
        if edit == "move":
            t = rng.choice([t for t in m.targets if t.impossible is None])
            choices = [p for p in POOLS if p != t.pool]
            fresh = [p for p in choices if m.would_build(p, t.backend)]
            old, t.pool = t.pool, rng.choice(fresh or choices)
            return f"{t.name} {old} -> {t.pool}", m.would_build(t.pool, t.backend)
        if edit == "backend":
            t = rng.choice(m.targets)
            old = t.backend
            t.backend = FAILING_BACKEND if old == WORKING_BACKEND else WORKING_BACKEND
            # To the failing backend: a Job that fails at once; back: a build, unless made.
            builds = t.backend == FAILING_BACKEND or m.would_build(t.pool, t.backend)
            return f"{t.name} {old} -> {t.backend}", builds
        if edit == "scheduling":
            t = rng.choice(m.targets)
            if rng.random() < 0.5:
                t.spot = not t.spot
                return f"{t.name} toleration {'+' if t.spot else '-'}spot", False
            t.cpu_request = rng.choice([c for c in (None, "500m", "1") if c != t.cpu_request])
            return f"{t.name} requests.cpu={t.cpu_request}", False
        if edit == "impossible":
            t = rng.choice([t for t in m.targets if t.impossible is None])
            t.home, t.pool = t.pool, NOWHERE
            return f"{t.name} {t.home} -> nodeSelector {POOL_LABEL}={NOWHERE}", True
        if edit == "resolution":
            unseen = [r for r in RESOLUTIONS if r != m.resolution]
            m.resolution = rng.choice(unseen[:2] if self.number < 20 else unseen)
            return f"input {m.resolution[0]}x{m.resolution[1]}", True
        if edit == "precision":
            m.precision = rng.choice([p for p in ("fp32", "fp16", "int8") if p != m.precision])
            return f"precision {m.precision}", True
        if edit == "gates":
            m.min_cosine = rng.choice([g for g in GATES if g != m.min_cosine])
            return f"verification.minCosine {m.min_cosine}", True
        if edit == "calibration":
            m.cal_method = rng.choice([c for c in CAL_METHODS if c != m.cal_method])
            return f"calibration.method {m.cal_method}", True
        raise ValueError(edit)

    def next(self) -> Step:
        self.number += 1
        m, rng = self.model, self.rng
        if any(t.pool == NOWHERE for t in m.targets):
            edit = "fix"
        elif self.edits_left:
            feasible = [e for e in self.edits_left if self._feasible(e)]
            # While a required fault waits, prefer an edit that makes a build to carry it.
            if self.faults_left:
                working = [e for e in feasible if e in ("add", "move", "resolution")]
                feasible = working or feasible
            edit = rng.choice(feasible or ["scheduling"])
            if edit in self.edits_left:
                self.edits_left.remove(edit)
        elif self.faults_left:
            edit = "add" if self._feasible("add") else "move"
        else:
            kinds = [e for e in EDIT_WEIGHTS if self._feasible(e)]
            edit = rng.choices(kinds, weights=[EDIT_WEIGHTS[e] for e in kinds])[0]
        description, builds = self._apply(edit)
        fault = None
        if builds and self.faults_left:
            fault = self.faults_left.pop(rng.randrange(len(self.faults_left)))
        elif not self.edits_left and rng.random() < (0.4 if builds else 0.15):
            # Also at rest: a restarted operator, a finished Job deleted, S3 away, the
            # API server restarted must change nothing.
            fault = rng.choice(self.faults)
        seconds = rng.uniform(20, 40) if fault == "minio-outage" else 0.0
        m.note_built()
        return Step(self.number, edit, description, fault, seconds)


# ---------------------------------------------------------------------------------------
# Reading the cluster.


def kstatus_of(binary: Path, obj: dict[str, Any]) -> tuple[str, str]:
    """What cli-utils' kstatus computes (hack/cluster/modules/kstatus): (status, message)."""
    done = subprocess.run(
        [str(binary)], input=json.dumps(obj), capture_output=True, text=True, check=True
    )
    (result,) = json.loads(done.stdout)
    return str(result["status"]), str(result["message"])


def identity_function() -> Callable[..., str] | None:
    """The operator's `target_identity(target, image, int8_class)`, or None for an
    operator that has no target identities (then the `identity` invariant fails)."""
    naming = importlib.import_module("bodypose_operator.builders.naming")
    found: Callable[..., str] | None = getattr(naming, "target_identity", None)
    return found


def job_finished(job: Any) -> bool:
    conditions = job.status.conditions or [] if job.status else []
    return any(c.type in ("Complete", "Failed") and c.status == "True" for c in conditions)


def forms(secret: str) -> list[str]:
    return [secret, base64.b64encode(secret.encode()).decode()]


@dataclass(frozen=True)
class Divergence:
    seed: int
    step: int
    description: str
    invariant: str
    details: str

    def __str__(self) -> str:
        return (f"DIVERGENCE seed={self.seed} step={self.step} ({self.description}) "
                f"invariant={self.invariant}: {self.details}\n  replay: python -m "
                f"tests.support.convergence --seed {self.seed} --steps {self.step}")  # fmt: skip


@dataclass
class Result:
    seed: int
    steps: list[Step] = field(default_factory=list)
    divergences: list[Divergence] = field(default_factory=list)
    #: Seconds from the edit to quiescence, of the steps with no fault (a fault's own
    #: delays, S3 away for half a minute, are not the operator's), and of those with one.
    converge_seconds: list[float] = field(default_factory=list)
    converge_seconds_with_fault: list[float] = field(default_factory=list)
    wall_seconds: float = 0.0

    @staticmethod
    def _figures(times: list[float]) -> tuple[float, float]:
        ordered = sorted(times)
        if not ordered:
            return float("nan"), float("nan")
        return statistics.median(ordered), ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]

    def summary(self) -> str:
        median, p95 = self._figures(self.converge_seconds)
        return (f"campaign seed={self.seed} steps={len(self.steps)} "
                f"divergences={len(self.divergences)} converge median={median:.1f}s "
                f"p95={p95:.1f}s")  # fmt: skip

    def fault_summary(self) -> str:
        median, p95 = self._figures(self.converge_seconds_with_fault)
        return (
            f"steps with a fault: {len(self.converge_seconds_with_fault)}, converge "
            f"median={median:.1f}s p95={p95:.1f}s (the fault's own delays included)"
        )

    def by_invariant(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for d in self.divergences:
            counts[d.invariant] = counts.get(d.invariant, 0) + 1
        return counts


# ---------------------------------------------------------------------------------------
# The campaign.


class Campaign:
    """Drives one BodyPoseExport in `namespace` through the generator's steps, with the
    operator of this checkout as a process (restarted after a kill), against `minio`
    (stopped and started by the outage fault: it must be this campaign's own)."""

    def __init__(
        self,
        cluster: LocalCluster,
        namespace: str,
        minio: MinioProcess,
        model_file: Path,
        model_key: str,
        kstatus: Path,
        exporter_image: str,
        work: Path,
        *,
        calibration_images: Path | None = None,
        shared_cluster: bool = True,
        step_timeout: float = 420.0,
        out: Callable[[str], None] = print,
    ) -> None:
        from kubernetes import client

        self.cluster, self.namespace, self.minio = cluster, namespace, minio
        self.model_file, self.model_key, self.kstatus = model_file, model_key, kstatus
        self.work, self.calibration_images = work, calibration_images
        self.shared_cluster, self.step_timeout, self.out = shared_cluster, step_timeout, out
        api = cluster.api_client()
        self.api = api
        self.custom: Any = client.CustomObjectsApi(api)
        self.batch: Any = client.BatchV1Api(api)
        self.core: Any = client.CoreV1Api(api)
        # The operator's settings, as it reads them from its environment: the build
        # images enter the target identities.
        self.operator_env = {
            "BODYPOSE_EXPORTER_GPU_IMAGE": exporter_image,
            "BODYPOSE_PENDING_CHECK_SECONDS": "3",
            "BODYPOSE_PENDING_DEADLINE_SECONDS": "20",
        }
        self.operators: list[OperatorProcess] = []
        self.identity = identity_function()

    # ---- set-up ------------------------------------------------------------------------
    def settings(self) -> Any:
        import os

        from bodypose_operator.settings import Settings

        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        return Settings.from_env({**env, **self.operator_env})

    def prepare(self) -> None:
        from devcluster.crd import install_crd

        install_crd(self.api)
        s3 = self.minio.server.client()
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=BUCKET)
        s3.upload_file(str(self.model_file), BUCKET, "models/bpnet.tlt")
        if self.calibration_images is not None:
            for image in sorted(self.calibration_images.iterdir()):
                s3.upload_file(str(image), BUCKET, f"calibration/images/{image.name}")
        for name, data in (("bpnet-key", {"key": self.model_key}),
                           ("s3-credentials", self.minio.server.environment())):  # fmt: skip
            self.core.create_namespaced_secret(
                self.namespace, {"metadata": {"name": name}, "stringData": data}
            )

    def start_operator(self) -> OperatorProcess:
        log = self.work / f"operator-{len(self.operators)}.log"
        op = start_operator(self.cluster.kubeconfig, log, self.operator_env, (self.namespace,))
        self.operators.append(op)
        return op

    def stop_operators(self) -> None:
        for op in self.operators:
            op.stop()

    # ---- reading -----------------------------------------------------------------------
    def read(self) -> dict[str, Any]:
        obj: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, RESOURCE
        )
        return obj

    def jobs(self) -> list[Any]:
        selector = f"bodypose.dev/export={RESOURCE}"
        return list(self.batch.list_namespaced_job(self.namespace, label_selector=selector).items)

    def active_jobs(self, status: dict[str, Any] | None = None) -> list[Any]:
        """Unfinished Jobs of the resource, but for one whose target the status already
        reports Failed (a build that cannot schedule stays pending; its target is over)."""
        failed = {t["name"] for t in (status or {}).get("targets", []) if t["phase"] == "Failed"}
        return [j for j in self.jobs() if not job_finished(j)
                and j.metadata.labels.get(LABEL_TARGET) not in failed]  # fmt: skip

    def write_spec(self, spec: dict[str, Any]) -> None:
        """Replace the spec whole (a GitOps apply of the new manifest)."""
        from kubernetes.client.exceptions import ApiException

        for _ in range(20):
            try:
                obj = self.read()
            except ApiException as exc:
                if exc.status != 404:
                    raise
                body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "BodyPoseExport",
                        "metadata": {"name": RESOURCE}, "spec": spec}  # fmt: skip
                self.custom.create_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL, body
                )
                return
            obj["spec"] = spec
            obj.pop("status", None)
            try:
                self.custom.replace_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL, RESOURCE, obj
                )
                return
            except ApiException as exc:
                if exc.status != 409:
                    raise
                time.sleep(0.5)
        raise RuntimeError("could not write the spec (conflicts)")

    # ---- faults ------------------------------------------------------------------------
    def _await_work(self, timeout: float = 90.0) -> str:
        """Wait for a Job of the resource to be running (a build rather than the export
        when there is one); its name, or "" when none ran (the operator made no Job for
        the edit, or it ended first: the resource quiet for 5 s, or the timeout)."""
        from kubernetes.client.exceptions import ApiException

        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            active = [j for j in self.jobs() if not job_finished(j) and (j.status.active or 0)]
            builds = [j for j in active if j.metadata.labels.get("bodypose.dev/stage") == "build"]
            if builds or (active and time.monotonic() > deadline - timeout / 2):
                return str((builds or active)[0].metadata.name)
            try:
                obj = self.read()
                status = obj.get("status") or {}
                quiet = status.get("observedGeneration") == obj["metadata"]["generation"]
                quiet = quiet and not self.active_jobs(status)
            except (ApiException, OSError):
                quiet = False
            if not quiet:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > 5:
                return ""
            time.sleep(0.5)
        return ""

    def inject(self, step: Step) -> str:
        fault = step.fault
        running = self._await_work()
        note = f"during {running}" if running else "(no Job was running)"
        if fault == "kill-operator":
            self.operators[-1].stop(kill=True)
            time.sleep(2)
            self.start_operator()
        elif fault == "delete-job":
            if not running:  # at rest: the newest finished Job
                done = sorted(self.jobs(), key=lambda j: j.metadata.creation_timestamp)
                running = done[-1].metadata.name if done else ""
                note = f"(at rest: {running or 'no Job'})"
            if running:
                from kubernetes.client.exceptions import ApiException

                with contextlib.suppress(ApiException):
                    self.batch.delete_namespaced_job(
                        running, self.namespace, propagation_policy="Background"
                    )
        elif fault == "delete-pod":
            pods = self.core.list_namespaced_pod(
                self.namespace, label_selector=f"job-name={running}"
            ).items
            for pod in pods:
                self.core.delete_namespaced_pod(pod.metadata.name, self.namespace)
            note += f", {len(pods)} pod(s)"
        elif fault == "minio-outage":
            self.minio.stop(kill=True)
            time.sleep(step.fault_seconds)
            self.minio.start()
        elif fault == "apiserver-restart":
            self.cluster.restart("kube-apiserver", down_seconds=5)
        return note

    # ---- quiescence --------------------------------------------------------------------
    def quiesce(self, since: float, hold: float = 4.0, grace: float = 30.0) -> float | None:
        """Seconds from `since` to quiescence (no Reconciling, no active Job, held for
        `hold` s; the operator's status of the new generation first, for up to `grace`
        s, so that the moment before it reacts is not taken for quiescence), or None
        after the step's timeout."""
        from kubernetes.client.exceptions import ApiException

        quiet_since: float | None = None
        deadline = since + self.step_timeout
        while time.monotonic() < deadline:
            try:
                obj = self.read()
                status = obj.get("status") or {}
                observed = status.get("observedGeneration") == obj["metadata"]["generation"]
                reconciling = any(c["type"] == "Reconciling" and c["status"] == "True"
                                  for c in status.get("conditions", []))  # fmt: skip
                quiet = (observed or time.monotonic() - since > grace) and not reconciling
                quiet = quiet and not self.active_jobs(status)
            except (ApiException, OSError):
                quiet = False  # the API server away (restarted): not quiet yet
            now = time.monotonic()
            if not quiet:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = now
            elif now - quiet_since >= hold:
                return quiet_since - since
            time.sleep(1.0)
        return None

    # ---- the invariant -----------------------------------------------------------------
    def check(self, model: SpecModel) -> list[tuple[str, str]]:
        """The invariant after quiescence: [(invariant, details)] for each failure."""
        found: list[tuple[str, str]] = []
        obj = self.read()
        spec, status = obj["spec"], obj.get("status") or {}
        generation = obj["metadata"]["generation"]
        if status.get("observedGeneration") != generation:
            found.append(("generation", f"observedGeneration {status.get('observedGeneration')}"
                          f" != generation {generation}"))  # fmt: skip
        spec_targets = {t["name"]: t for t in spec["targets"]}
        listed = [t["name"] for t in status.get("targets", [])]
        if sorted(listed) != sorted(spec_targets):
            found.append(("targets", f"status lists {sorted(listed)}, spec has "
                          f"{sorted(spec_targets)}"))  # fmt: skip
        identities = self._check_ready_targets(status, spec_targets, found)
        self._check_jobs(status, spec_targets, identities, found)
        self._check_kstatus(obj, model, found)
        self._check_secrets(status, found)
        return found

    def _check_ready_targets(
        self, status: dict[str, Any], spec_targets: dict[str, Any], found: list[tuple[str, str]]
    ) -> set[str]:
        """`identity` and `artifact` of each Ready target; the identities the spec's
        targets have now (empty without target_identity)."""
        from bodypose_operator.api.v1alpha1 import Target

        settings = self.settings()
        identities: set[str] = set()
        by_name = {t["name"]: t for t in status.get("targets", [])}
        for name, raw in spec_targets.items():
            target = Target.model_validate(raw)
            listed = by_name.get(name, {})
            expected: str | None = None
            if self.identity is not None:
                expected = self.identity(target, settings.build_image(target.backend),
                                         listed.get("int8Class"))  # fmt: skip
                identities.add(expected)
            if listed.get("phase") != "Ready":
                continue
            uri = listed.get("engineUri") or ""
            if self.identity is None:
                found.append((
                    "identity", f"target {name} is Ready, and the operator has no "
                    "builders.naming.target_identity to say what it is",
                ))  # fmt: skip
            else:
                problems = []
                if listed.get("identity") != expected:
                    problems.append(f"status identity {listed.get('identity')}")
                # Its own folder, or one of another target of the same identity (reuse).
                if not (uri.startswith("s3://") and uri.rsplit("/", 2)[-2] == expected
                        and "/targets/" in uri):  # fmt: skip
                    problems.append(f"engineUri {uri}")
                if problems:
                    found.append(("identity", f"target {name} (identity now {expected}): "
                                              + ", ".join(problems)))  # fmt: skip
            manifest = self._manifest_beside(uri)
            if manifest is None:
                found.append(("artifact", f"target {name}: no manifest.json beside {uri}"))
                continue
            if self.identity is not None and manifest.get("targetIdentity") != expected:
                recorded = manifest.get("targetIdentity")
                found.append(("identity", f"target {name}: manifest targetIdentity "
                              f"{recorded} != {expected}"))  # fmt: skip
            if manifest.get("backend") != target.backend:
                found.append(("artifact", f"target {name} names backend {target.backend}; "
                              f"its artifact was built by {manifest.get('backend')}"))  # fmt: skip
            job = self._job(listed.get("jobName"))
            if job is not None:
                ran_on = job.spec.template.spec.node_selector or {}
                if ran_on != target.nodeSelector:
                    found.append(("artifact", f"target {name} names nodeSelector "
                              f"{target.nodeSelector}; its artifact was built by "
                              f"Job {job.metadata.name} for {ran_on}"))  # fmt: skip
        return identities

    def _manifest_beside(self, uri: str) -> dict[str, Any] | None:
        if not uri.startswith("s3://"):
            return None
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        folder = key.rsplit("/", 1)[0]
        try:
            s3 = self.minio.server.client()
            body = s3.get_object(Bucket=bucket, Key=f"{folder}/manifest.json")["Body"].read()
        except Exception:  # a missing (or unreadable) manifest is the finding
            return None
        manifest: dict[str, Any] = json.loads(body)
        return manifest

    def _job(self, name: str | None) -> Any:
        if not name:
            return None
        return next((j for j in self.jobs() if j.metadata.name == name), None)

    def _check_jobs(
        self,
        status: dict[str, Any],
        spec_targets: dict[str, Any],
        identities: set[str],
        found: list[tuple[str, str]],
    ) -> None:
        for job in self.jobs():
            if job_finished(job):
                continue
            labels = job.metadata.labels or {}
            name = job.metadata.name
            why = []
            if labels.get(LABEL_CONTENT_KEY) not in (None, status.get("contentKey")):
                why.append(f"content key {labels.get(LABEL_CONTENT_KEY)}")
            target = labels.get(LABEL_TARGET)
            if target is not None and target not in spec_targets:
                why.append(f"target {target} is not in the spec")
            identity = labels.get(LABEL_IDENTITY)
            if identity is not None and self.identity is not None and identity not in identities:
                why.append(f"identity {identity} is no target's now")
            if why:
                found.append(("obsolete-job", f"Job {name} still running: " + "; ".join(why)))

    def _check_kstatus(
        self, obj: dict[str, Any], model: SpecModel, found: list[tuple[str, str]]
    ) -> None:
        verdict, message = kstatus_of(self.kstatus, obj)
        status = obj.get("status") or {}
        expected = model.expected_failures()
        failed = {t["name"]: t.get("message", "") for t in status.get("targets", [])
                  if t["phase"] == "Failed"}  # fmt: skip
        not_ready = sorted(t["name"] for t in status.get("targets", []) if t["phase"] != "Ready")
        if verdict == "Current":
            if expected:
                found.append(("kstatus", f"Current, yet the spec makes {expected} impossible"))
            elif not_ready:
                found.append(("kstatus", f"Current with targets not Ready: {not_ready}"))
        elif verdict == "Failed":
            if set(failed) != set(expected):
                found.append(("kstatus", f"Failed ({message}); failed targets "
                              f"{sorted(failed)}, the spec makes impossible "
                              f"{sorted(expected)}"))  # fmt: skip
            gone = [n for n in failed if n not in {t.name for t in model.targets}]
            if gone:
                found.append(("kstatus", f"Failed on targets no longer in the spec: {gone}"))
        else:
            found.append(("kstatus", f"{verdict}: {message}"))

    def _check_secrets(self, status: dict[str, Any], found: list[tuple[str, str]]) -> None:
        events = self.core.list_namespaced_event(self.namespace).items
        texts = {
            "events": json.dumps(self.api.sanitize_for_serialization(events)),
            "status": json.dumps(status),
            "operator log": "\n".join(op.log.read_text(errors="replace") for op in self.operators),
        }
        secrets_ = {"model key": self.model_key, "S3 secret key": self.minio.server.secret_key}
        for what, value in secrets_.items():
            for where, text in texts.items():
                if any(form in text for form in forms(value)):
                    found.append(("secrets", f"the {what} appears in the {where}"))

    # ---- the run -----------------------------------------------------------------------
    def run(self, steps: int, seed: int) -> Result:
        gen = Generator(seed, allow_apiserver_restart=not self.shared_cluster)
        result = Result(seed)
        started = time.monotonic()
        self.out(f"campaign seed={seed}: {steps} steps on {self.namespace}")
        # Step 0: the resource as first applied, two targets on the cpu and t4 pools.
        plan = [Step(0, "create", "targets tg1 on cpu, tg2 on t4")]
        model = copy.deepcopy(gen.model)
        self.write_spec(model.to_spec(BUCKET))
        self._settle(plan[0], model, time.monotonic(), result, seed)
        for _ in range(steps):
            step = gen.next()
            model = copy.deepcopy(gen.model)
            result.steps.append(step)
            edited = time.monotonic()
            self.write_spec(model.to_spec(BUCKET))
            note = self.inject(step) if step.fault else ""
            self._settle(step, model, edited, result, seed, note)
        result.wall_seconds = time.monotonic() - started
        return result

    def _settle(
        self,
        step: Step,
        model: SpecModel,
        edited: float,
        result: Result,
        seed: int,
        note: str = "",
    ) -> None:
        took = self.quiesce(edited)
        found: list[tuple[str, str]] = []
        if took is None:
            found.append(("quiescence", f"did not converge in {self.step_timeout:.0f} s"))
        elif step.fault:
            result.converge_seconds_with_fault.append(took)
        else:
            result.converge_seconds.append(took)
        found += self.check(model)
        for invariant, details in found:
            result.divergences.append(
                Divergence(seed, step.number, step.describe(), invariant, details)
            )
        when = f"{took:.1f}s" if took is not None else "timeout"
        self.out(f"step {step.number} {step.describe()} {note}: converged in {when}, "
                 f"{'ok' if not found else f'{len(found)} divergence(s)'}")  # fmt: skip
        for invariant, details in found:
            self.out(f"  DIVERGENCE seed={seed} step={step.number} invariant={invariant}: "
                     f"{details}")  # fmt: skip
        if found:
            for line in self.failed_pods():
                self.out(f"  evidence: {line}")

    def failed_pods(self) -> list[str]:
        """What each failed pod of the resource's Jobs said as it ended (exit code and
        termination message): a divergence's log must say why a Job ended for good, since
        the operator deletes a Job at rest on the next step (issue 32, soak seed 35061)."""
        lines = []
        for job in self.jobs():
            selector = f"job-name={job.metadata.name}"
            for pod in self.core.list_namespaced_pod(self.namespace, label_selector=selector).items:
                for status in (pod.status.container_statuses or []) if pod.status else []:
                    ended = status.state.terminated if status.state else None
                    if ended is None or ended.exit_code == 0:
                        continue
                    said = (ended.message or "").strip().replace("\n", " ")[:400]
                    said = said or "no message"
                    lines.append(
                        f"pod {pod.metadata.name} of Job {job.metadata.name} exited "
                        f"{ended.exit_code} ({ended.reason}): {said}"
                    )
        return lines


# ---------------------------------------------------------------------------------------
# Stand-alone: `python -m tests.support.convergence --steps N --seed S` (make soak).


@contextlib.contextmanager
def standalone(state: Path) -> Iterator[tuple[LocalCluster, MinioProcess, Path, str]]:
    """A local cluster with the images loaded, a MinIO of its own, the kstatus binary and
    the exporter image's ref."""
    from devcluster.controlplane import ensure_binaries
    from devcluster.images import base_image, ensure_images

    bins = ensure_binaries(progress=sys.stderr)
    extra = ensure_binaries(("minio", "kstatus"), progress=sys.stderr)
    images = [base_image(sys.stderr), *ensure_images(progress=sys.stderr)]
    local = LocalCluster(state / "cluster", bins).start()
    minio = MinioProcess(extra["minio"], state / "minio")
    try:
        for image in images:
            local.load_image(image.archive)
        minio.start()
        exporter = next(i.ref for i in images if i.name == "exporter")
        yield local, minio, extra["kstatus"], exporter
    finally:
        minio.stop()
        local.stop()


def sample_model(directory: Path, key: str, images: int = 8) -> tuple[Path, Path]:
    """The untrained sample, encrypted with `key`, and calibration images."""
    from bodypose_exporter.stages.sample import write_sample_images, write_sample_model

    directory.mkdir(parents=True, exist_ok=True)
    model = directory / "bpnet_campaign.tlt"
    write_sample_model(model, key)
    write_sample_images(directory / "images", images)
    return model, directory / "images"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=int(dt.date.today().strftime("%Y%m%d")))
    parser.add_argument("--step-timeout", type=float, default=420.0)
    parser.add_argument(
        "--state-dir", type=Path, default=None,
        help="where the cluster, MinIO and the logs live (default: a temp dir)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    from tests.infra.cluster import fresh_namespace

    with contextlib.ExitStack() as stack:
        state = args.state_dir or Path(stack.enter_context(
            tempfile.TemporaryDirectory(prefix="bodypose-campaign-")))  # fmt: skip
        state.mkdir(parents=True, exist_ok=True)
        key = f"campaign-key-{secrets.token_hex(8)}"
        model, images = sample_model(state / "sample", key)
        cluster, minio, kstatus, exporter = stack.enter_context(standalone(state))
        namespace = stack.enter_context(fresh_namespace(cluster))
        campaign = Campaign(cluster, namespace, minio, model, key, kstatus, exporter,
                            state, calibration_images=images, shared_cluster=False,
                            step_timeout=args.step_timeout)  # fmt: skip
        campaign.prepare()
        campaign.start_operator()
        try:
            result = campaign.run(args.steps, args.seed)
        finally:
            campaign.stop_operators()
    for divergence in result.divergences:
        print(divergence)
    print(f"divergences by invariant: {result.by_invariant()}; wall {result.wall_seconds:.0f}s")
    print(result.fault_summary())
    print(result.summary())
    return 1 if result.divergences else 0


if __name__ == "__main__":
    raise SystemExit(main())
