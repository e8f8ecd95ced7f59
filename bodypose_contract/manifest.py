"""`manifest.json`, version 1: the keys of it one half writes and the other reads.

Every stage writes a manifest last (`artifacts.MANIFEST_NAME`); the operator reads
an export's to fill the status' artifacts and a target's to fill that target's
status. The key names below are the wire format of version 1 (`SCHEMA`): a change
that would break a reader of version 1 is a new schema string, not a new meaning
of these keys. The exporter's `Manifest` (`bodypose_exporter/manifest.py`) writes
them; the operator's `controller/manifests.py` and `controller/observe.py` read them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypedDict

#: The schema a manifest names (`schema`): this module describes version 1.
SCHEMA = "bodypose.dev/export-manifest/v1"


class Key(StrEnum):
    """Top-level keys of a manifest, and the keys inside its sections the operator reads."""

    SCHEMA = "schema"
    ARTIFACTS = "artifacts"
    #: A target's identity as the operator computed it (`bpnet build --target_identity`).
    TARGET_IDENTITY = "targetIdentity"
    HARDWARE = "hardware"
    COMPATIBILITY = "compatibility"
    RUNTIME = "runtime"
    VERIFICATION = "verification"
    EVALUATION = "evaluation"
    CALIBRATION = "calibration"
    BUILD = "build"
    PRECISION = "precision"
    REQUESTED_PRECISION = "requestedPrecision"
    PRECISION_REASON = "precisionReason"
    TIMINGS = "timingsSeconds"
    LATENCY = "latency"
    #: int8 CPU artifacts: int8 against the FP32 model on the build node.
    INT8_SPEEDUP = "int8Speedup"
    #: What the build found worth knowing that did not stop it (published all the same).
    WARNINGS = "warnings"
    SERVING = "serving"
    #: verification / evaluation: False when the engine was built and not run here.
    RUN = "run"
    #: verification / evaluation: why it was not run.
    NOT_RUN_REASON = "notRunReason"
    #: build: the int8 source the engine was built from (`Int8Source`).
    INT8_SOURCE = "int8Source"
    #: build: the precision the artifact computes in, where it differs from the asked one.
    EFFECTIVE_PRECISION = "effectivePrecision"
    #: compatibility: the one GPU compute capability an artifact runs on, where it has one
    #: (Triton's per-GPU model file names, `cc_model_filenames`, are keyed by it).
    COMPUTE_CAPABILITY = "computeCapability"


class Int8Source(StrEnum):
    """Where an int8 engine's ranges came from (`build.int8Source`)."""

    FP32 = "fp32"  # not int8
    QDQ = "qdq"  # the explicitly quantized model
    CALIBRATION_CACHE = "calibration-cache"  # cal.bin
    TENSORFILE = "tensorfile"  # calibrated during the build, from the tensorfile


class ArtifactEntry(TypedDict):
    """One of a manifest's `artifacts[]`."""

    kind: str  # an `artifacts.Kind`, or an old name (`artifacts.OLD_KINDS`)
    path: str  # where it was published (s3:// or a local path)
    bytes: int
    sha256: str


class NotRun(TypedDict, total=False):
    """`verification` / `evaluation` of an engine built and not run where it was built."""

    run: bool
    notRunReason: str
