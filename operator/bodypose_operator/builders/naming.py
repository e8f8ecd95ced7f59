"""Deterministic names, labels and the content key.

A restarted operator must compute the same Job name for the same work, so
names derive only from the resource and the content key: never from time or
randomness. Kubernetes names are at most 63 characters for a Job (its pods get
a suffix and the `job-name` label value is capped at 63).
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


def job_name(resource: str, stage: str, key: str, target: str | None = None) -> str:
    """`<resource>-<stage>[-<target>]-<hash>`, truncated to fit 63 characters."""
    suffix = short_hash(resource, stage, target or "", key)
    readable = f"{resource}-{stage}" + (f"-{target}" if target else "")
    room = MAX_JOB_NAME - len(suffix) - 1
    readable = readable[:room].rstrip("-.")
    return f"{readable}-{suffix}"


def pool_identity(target: Target, image: str | None = None) -> str:
    """What makes two targets' engines interchangeable: the pool they build on, the
    backend, the backend-only options the target sets (a TensorRT engine's
    hardware-compatibility level is part of its compatibility record), and, for a
    backend whose artifacts depend on the library in its build image, that image
    (a TensorRT engine loads only in the TensorRT version that built it).

    An engine belongs to the hardware it was built on; the nodeSelector names that
    pool (its GPU, so its compute capability). The target's name and scheduling
    details (tolerations, resources) do not change the engine. An option left at its
    default stays out of the blob, so a target that does not use it keeps the identity
    (and the index entries) it had before the option existed. The gates an engine must
    pass are in the content key (`content_key`), under which the pool entries live.
    """
    backend = BACKENDS[target.backend]
    options = {
        option.field: getattr(target, option.field)
        for option in TARGET_OPTIONS
        if option.is_set(getattr(target, option.field))
    }
    blob = json.dumps(
        {"backend": target.backend, "nodeSelector": target.nodeSelector, **options,
         **({"image": image} if image and backend.image_in_pool_identity else {})},
        sort_keys=True,
    )  # fmt: skip
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
