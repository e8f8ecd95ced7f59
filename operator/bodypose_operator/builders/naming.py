"""Deterministic names, labels, the content key and a target's identity.

A restarted operator must compute the same Job name for the same work, so
names derive only from the resource, the content key and the Job's own spec
(`job_spec_hash`): never from time or randomness. Kubernetes names are at most
63 characters for a Job (its pods get a suffix and the `job-name` label value
is capped at 63).

Three hashes, three questions (DESIGN.md, "Convergence"): the content key, which
shared artifacts (the export, the calibration) a spec asks for; a target's
identity, which artifact that target asks for (where it is published and which
artifact may stand for it); the Job spec hash, which Job a stage's spec asks for
(so an edit of what the Job runs, a scheduling field included, replaces a Job
that failed or runs under the old spec).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from bodypose_operator.api.backends import BACKENDS, TARGET_OPTIONS
from bodypose_operator.api.v1alpha1 import GROUP, BodyPoseExportSpec, Target

MAX_JOB_NAME = 63
LABEL_PREFIX = GROUP
LABEL_RESOURCE = f"{LABEL_PREFIX}/export"
LABEL_GENERATION = f"{LABEL_PREFIX}/generation"
LABEL_STAGE = f"{LABEL_PREFIX}/stage"
LABEL_TARGET = f"{LABEL_PREFIX}/target"
LABEL_CONTENT_KEY = f"{LABEL_PREFIX}/content-key"
#: A build Job's target identity (`target_identity`): what its artifact is built for.
LABEL_IDENTITY = f"{LABEL_PREFIX}/identity"
#: The hash of the Job's own spec (`job_spec_hash`): which spec of its stage it runs.
LABEL_JOB_SPEC = f"{LABEL_PREFIX}/job-spec"


def short_hash(*parts: str, length: int = 8) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:length]


def content_key(model_digest: str, spec: BodyPoseExportSpec) -> str:
    """Key of the artifact set: the model's digest plus every field that changes an artifact
    or decides whether one is accepted.

    Targets' scheduling fields (nodeSelector, tolerations, resources) do not change
    the shared artifacts and are left out; the engine's inputs are in, and so are the
    gates an engine must pass: `verification` (maxAbsDiff, minCosine, minPeakAgreement)
    and `evaluation` (its set and maxApDrop). Reuse compares keys (the content index
    lives under the key, the pool entries too), so an engine published under the
    default gates is never taken for one that asked for stricter ones, and gates
    tightened after Ready make a new key: new Jobs, a new build judged by them.

    Why the gates are in the key rather than re-checked at reuse (reading a found
    engine's recorded figures against the new gates and rebuilding when they fail): a
    re-check needs the exporter's per-precision default gates and comparison rules
    mirrored here (a gate left unset means "the default", which only the exporter
    knows), and a rebuild of a target whose manifest already stands at its own prefix
    would need a second Job name for the same key and target; both are places for the
    operator and the exporter to drift apart. The price of the key: a changed gate
    also runs the export again, which the gates do not affect.
    """
    engine = spec.engine.model_dump()
    # Fields added after the first release enter the key only when set: a resource
    # that does not use them keeps its key (its artifacts, its Jobs' names) across an
    # operator upgrade.
    if engine.get("int8Route") == "auto":
        del engine["int8Route"]
    calibration = spec.calibration.model_dump() if spec.calibration else None
    if calibration is not None and calibration.get("method") == "entropy":
        del calibration["method"]
    relevant: dict[str, Any] = {
        "model": model_digest,
        "experimentSpec": spec.model.experimentSpecUri,
        "input": spec.input.model_dump(),
        "precision": spec.precision,
        "calibration": calibration,
        "engine": engine,
    }
    if spec.evaluation is not None:
        relevant["evaluation"] = spec.evaluation.model_dump()
    # Only the gates a resource sets (unset: the exporter's per-precision defaults), and
    # only when it sets one: a resource with none keeps its key.
    gates = spec.verification.model_dump(exclude_none=True)
    if gates:
        relevant["verification"] = gates
    blob = json.dumps(relevant, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def job_name(
    resource: str, stage: str, key: str, target: str | None = None, spec_hash: str = ""
) -> str:
    """`<resource>-<stage>[-<target>]-<hash>`, truncated to fit 63 characters.

    The hash covers the Job's own spec (`spec_hash`, from `job_spec_hash`): a Job
    belongs to the spec it was made for, so any edit that changes what its stage's Job
    would run (a target moved to another pool, its resources raised after an OOM, its
    tolerations fixed, the model's key Secret renamed) names a new Job, and the one that
    failed under the old spec is replaced instead of standing in for the new one."""
    suffix = short_hash(resource, stage, target or "", key, spec_hash)
    readable = f"{resource}-{stage}" + (f"-{target}" if target else "")
    room = MAX_JOB_NAME - len(suffix) - 1
    readable = readable[:room].rstrip("-.")
    return f"{readable}-{suffix}"


def job_spec_hash(job: dict[str, Any]) -> str:
    """What a Job runs, hashed: its spec without the pod template's labels (they carry the
    resource's generation, which changes on every edit, also of other targets), and the
    Kueue queue it waits in (a label, on the Job itself)."""
    spec = json.loads(json.dumps(job["spec"]))
    spec.get("template", {}).pop("metadata", None)
    labels = job.get("metadata", {}).get("labels") or {}
    blob = json.dumps(
        {"spec": spec, "queue": labels.get("kueue.x-k8s.io/queue-name")},
        sort_keys=True, separators=(",", ":"),
    )  # fmt: skip
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def target_identity(target: Target, image: str | None = None, int8_class: str | None = None) -> str:
    """Everything that changes a target's artifact, hashed: the pool it is built for, the
    backend, the backend-only options the target sets (a TensorRT engine's
    hardware-compatibility level is part of its compatibility record; a plug-in's
    `backendOptions`), for a backend
    whose artifacts depend on the library in its build image that image (a TensorRT
    engine loads only in the TensorRT version that built it), and for ONNX Runtime int8
    the CPU class the pool's nodes have (`int8_class`, read by the operator from Node
    Feature Discovery's labels).

    The identity decides where the target's artifact is published
    (`<prefix>/targets/<name>/<identity>/`) and which Job builds it, and the artifact's
    manifest records it (`targetIdentity`): a target is Ready only on an artifact of its
    identity now. It is also the content index's pool key, so two targets with the same
    identity share an engine across resources.

    The target's name and scheduling details (tolerations, resources) do not change the
    artifact. An option left at its default stays out of the blob, so a target that does
    not use it keeps the identity (and the index entries) it had before the option
    existed. The gates an engine must pass are in the content key (`content_key`).
    """
    backend = BACKENDS[target.backend]
    options = {
        option.field: getattr(target, option.field)
        for option in TARGET_OPTIONS
        if option.is_set(getattr(target, option.field))
    }
    if target.backendOptions:  # a backend's own options (`Target.backendOptions`)
        options["backendOptions"] = dict(target.backendOptions)
    blob = json.dumps(
        {"backend": target.backend, "nodeSelector": target.nodeSelector, **options,
         **({"image": image} if image and backend.image_in_identity else {}),
         **({"int8Class": int8_class} if int8_class else {})},
        sort_keys=True,
    )  # fmt: skip
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
