"""BodyPoseExport's status: what the operator observed, as pydantic models.

The operator writes it from the facts its Jobs reported (controller/decide.py);
`api.crd` makes the CRD's status schema of these models, as of the spec's.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bodypose_operator.api.backends import describe_status_keys
from bodypose_operator.api.base import ApiModel


class Condition(ApiModel):
    """A condition in the Kubernetes API conventions shape."""

    type: str = Field(
        description="Condition type: Ready, Exported, Calibrated, Built, and kstatus' "
        "Reconciling (work under way) and Stalled (failed until the spec changes), present "
        "only while they hold."
    )
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(description="CamelCase reason for the last transition.")
    message: str = Field(default="", description="Human-readable details.")
    lastTransitionTime: str = Field(description="RFC 3339 time of the last status change.")
    observedGeneration: int | None = Field(
        default=None, description="Generation this condition is about."
    )


class ArtifactRef(ApiModel):
    uri: str = Field(description="s3:// URI of the artifact.")
    sha256: str | None = Field(default=None, description="sha256 of its bytes.")
    sizeBytes: int | None = Field(default=None, description="Size in bytes.")


class SharedArtifacts(ApiModel):
    etlt: ArtifactRef | None = Field(default=None, description="The encrypted ONNX (.etlt).")
    onnx: ArtifactRef | None = Field(default=None, description="The plain ONNX model.")
    calibrationCache: ArtifactRef | None = Field(default=None, description="cal.bin (int8).")
    qdqModel: ArtifactRef | None = Field(
        default=None, description="The explicitly quantized (QDQ) ONNX model (int8)."
    )
    tensorfile: ArtifactRef | None = Field(
        default=None, description="Calibration tensorfile (int8)."
    )
    manifest: ArtifactRef | None = Field(default=None, description="Export stage manifest.")


class ServingConfigs(ApiModel):
    tritonRepository: str | None = Field(
        default=None, description="s3:// of a Triton model repository holding this engine."
    )
    tritonConfig: str | None = Field(default=None, description="s3:// of its config.pbtxt.")
    deepstreamConfig: str | None = Field(
        default=None, description="s3:// of a DeepStream nvinfer config (bodypose2d_pgie_config)."
    )


class LatencyFigures(ApiModel):
    median: float = Field(description="Median milliseconds per inference.")
    p90: float = Field(description="90th percentile, milliseconds.")
    p10: float | None = Field(default=None, description="10th percentile, milliseconds.")
    spreadPct: float | None = Field(
        default=None,
        description="(p90 - p10) / median, in percent: how much of the figure is the node's "
        "noise (a wide spread: compare such figures only by their ranges).",
    )
    runs: int | None = Field(default=None, description="Timed runs behind the figures.")
    batch: int = Field(description="The batch size timed.")


class Latency(ApiModel):
    batch1: LatencyFigures | None = Field(default=None, description="At batch 1.")
    batchMax: LatencyFigures | None = Field(default=None, description="At engine.maxBatchSize.")


class Int8Speedup(ApiModel):
    """An int8 CPU artifact against the FP32 model on the same node, timed in turns."""

    int8Ms: float = Field(description="The int8 artifact's batch-1 median, milliseconds.")
    fp32Ms: float = Field(description="The FP32 model's batch-1 median, milliseconds.")
    ratio: float = Field(description="fp32Ms / int8Ms: above 1, int8 is faster.")
    runs: int | None = Field(default=None, description="Timed runs of each.")


class LatencyMeasurement(ApiModel):
    """How `latencyMs` was measured: its clock, what it covers, the CPU slice and threads.

    Figures by the two clocks are not comparable: CUDA events time the GPU's work
    alone, the wall clock everything the runner's call does."""

    clock: Literal["cuda-events", "wall"] | None = Field(
        default=None,
        description="cuda-events: TensorRT's CUDA events around the execution, the input "
        "already on the device; wall: the wall clock around the runner's call (ONNX Runtime, "
        "TensorRT-RTX); absent where the build did not record it.",
    )
    includes: list[str] = Field(
        default_factory=list,
        description='What the figure covers, e.g. ["inference"] (CUDA events), '
        '["host-to-device copies", "inference", "device-to-host copies", "output '
        'conversion"] (TensorRT-RTX), ["inference", "output conversion"] (ONNX Runtime).',
    )
    cpus: str | None = Field(
        default=None,
        description="The CPU quota the build pod ran under (its CPU limit, which a build "
        "Job's request equals), e.g. 2 or 1500m; absent where the pod had no quota.",
    )
    threads: int | None = Field(
        default=None,
        description="The intra-op threads ONNX Runtime ran with: min(the pod's CPU "
        "affinity, its quota rounded up).",
    )
    threadsFrom: str | None = Field(
        default=None,
        description="Where that number came from, e.g. affinity 1 of 2 CPUs, no quota.",
    )


class QueueStatus(ApiModel):
    """Where a Job waits in Kueue, and why, in Kueue's words (its Workload's condition)."""

    name: str = Field(description="The LocalQueue the Job names (kueue.x-k8s.io/queue-name).")
    jobName: str | None = Field(default=None, description="The waiting Job.")
    workload: str | None = Field(default=None, description="Kueue's Workload for the Job.")
    condition: str | None = Field(
        default=None,
        description="The Workload condition quoted: QuotaReserved (False while it waits for "
        "quota), or Admitted.",
    )
    status: str | None = Field(default=None, description="That condition's status.")
    reason: str | None = Field(default=None, description="Kueue's reason, e.g. Pending.")
    message: str | None = Field(
        default=None,
        description="Kueue's message, e.g. insufficient unused quota for nvidia.com/gpu in "
        "flavor a100, 1 more needed.",
    )


class TargetStatus(ApiModel):
    name: str = Field(description="Target name.")
    phase: Literal["Pending", "Queued", "Building", "Ready", "Failed"] = Field(
        description="Target phase: Queued while its build Job waits in its Kueue queue."
    )
    jobName: str | None = Field(default=None, description="Build Job.")
    identity: str | None = Field(
        default=None,
        description="What the target's artifact is built for, hashed: backend, pool "
        "(nodeSelector), backend options, the build image where the artifact depends on it, "
        "the CPU class for ONNX Runtime int8. The artifact lives under targets/<name>/"
        "<identity>/ and its manifest records it; the target is Ready only on one of its "
        "identity now.",
    )
    int8Class: str | None = Field(
        default=None,
        description="ONNX Runtime int8: the CPU class the artifact is built for, read from "
        "Node Feature Discovery's cpu-cpuid labels of the nodes the target's nodeSelector "
        "selects (x86-vnni, x86-avx2, ...; x86: int7 weights (uint8 where int7 misses the "
        "gates), right on every x86 CPU).",
    )
    int8ClassReason: str | None = Field(
        default=None,
        description="Why the artifact is built for x86 rather than the pool's own class (its "
        "nodes disagree, or carry no such labels).",
    )
    precision: str | None = Field(
        default=None,
        description="What the artifact computes in, as its manifest records it: the spec's "
        "precision, or what the backend builds it as (ONNX Runtime builds fp16 as fp32).",
    )
    precisionReason: str | None = Field(
        default=None, description="Why the artifact's precision is not the spec's."
    )
    engineUri: str | None = Field(default=None, description="s3:// URI of the engine or artifact.")
    sha256: str | None = Field(default=None, description="sha256 of the engine.")
    sizeBytes: int | None = Field(default=None, description="Engine size.")
    gpuName: str | None = Field(default=None, description="GPU the engine was built on.")
    computeCapability: str | None = Field(default=None, description="GPU compute capability.")
    tensorrtVersion: str | None = Field(default=None, description="TensorRT version used.")
    instructionSet: str | None = Field(
        default=None,
        description="int8 CPU artifacts: the class of CPU it was built for (x86-vnni, "
        "x86-avx2, ...); its weights suit that class's int8 kernels, and it is refused on a CPU "
        "whose kernels would saturate.",
    )
    buildSeconds: float | None = Field(default=None, description="Build duration.")
    backendStatus: dict[str, str] | None = Field(
        default=None,
        description="What the target's backend recorded of the artifact that is its own, "
        f"keyed as its manifest names it (by backend: {describe_status_keys()}). Which keys "
        "a backend owns is its row of the backend table (status_keys), so a backend plug-in "
        "adds its own with no CRD field.",
    )
    notRun: str | None = Field(
        default=None,
        description="Why the engine was built and not run (no GPU of its kind where it was "
        "built): it has no verification figures, and no gate was applied to it.",
    )
    verification: dict[str, float] | None = Field(default=None, description="Verification figures.")
    message: str | None = Field(default=None, description="Why the target is not ready.")
    runtime: str | None = Field(default=None, description="What loads the engine or artifact.")
    hardwareCompatibility: str | None = Field(
        default=None, description="TensorRT hardware-compatibility level the engine was built with."
    )
    serving: ServingConfigs | None = Field(
        default=None, description="Ready-to-serve configs beside the engine."
    )
    deployEngine: ArtifactRef | None = Field(
        default=None,
        description="With engine.sdkCompatible and an evaluation set: the SDK-compatible engine "
        "(DeepStream's bodypose2d app), built from the same calibration as the evaluated one.",
    )
    retries: int | None = Field(
        default=None,
        description="Build attempts that failed for a reason a retry may cure (S3 away, a "
        "pod lost with its node, evicted or preempted, a crash) and were retried by the "
        "Job's back-off, up to the chart's jobs.backoffLimit.",
    )
    lastFailure: str | None = Field(
        default=None, description="Why the last failed attempt failed: reason: message."
    )
    queue: QueueStatus | None = Field(
        default=None, description="While Queued: the Kueue queue its build Job waits in, and why."
    )
    ap: float | None = Field(
        default=None, description="OKS keypoint AP of this engine on the evaluation set (AP x 100)."
    )
    apDrop: float | None = Field(
        default=None, description="AP points below the FP32 model's (negative: above it)."
    )
    maxApDrop: float | None = Field(default=None, description="The limit the drop was held to.")
    apM: float | None = Field(default=None, description="AP of this engine, medium people (COCO).")
    apL: float | None = Field(default=None, description="AP of this engine, large people (COCO).")
    latencyMs: Latency | None = Field(
        default=None,
        description="The engine's latency on its build node (the engine alone, no pre- or "
        "post-processing); absent where it was not run.",
    )
    throughput: float | None = Field(
        default=None, description="Images per second at engine.maxBatchSize (median)."
    )
    latencyDevice: str | None = Field(default=None, description="What the latency was timed on.")
    latency: LatencyMeasurement | None = Field(
        default=None,
        description="How latencyMs was measured: the clock, what it includes, the CPU share "
        "and threads.",
    )
    int8Speedup: Int8Speedup | None = Field(
        default=None,
        description="int8 CPU artifacts: how much faster than the FP32 model on the build node.",
    )
    warnings: list[str] | None = Field(
        default=None,
        description="What the build found worth knowing that did not stop it (an int8 "
        "artifact no faster than FP32 on its build node: published, with both figures).",
    )


#: The TargetStatus fields a build's compatibility record fills (what the artifact was
#: built for), in the order the status lists them: the built-in TensorRT and ONNX Runtime
#: facts, top-level since before `backendStatus`. A backend's own record keys
#: (`Backend.status_keys`) go to its target's `backendStatus` map instead.
COMPATIBILITY_FIELDS = (
    "gpuName",
    "computeCapability",
    "tensorrtVersion",
    "hardwareCompatibility",
    "instructionSet",
)


class EvaluationStatus(ApiModel):
    images: int | None = Field(default=None, description="Images evaluated.")
    ap: float | None = Field(default=None, description="FP32 model's AP (x 100).")
    ap50: float | None = Field(default=None, description="AP at OKS 0.50.")
    ap75: float | None = Field(default=None, description="AP at OKS 0.75.")
    apM: float | None = Field(default=None, description="AP, medium people.")
    apL: float | None = Field(default=None, description="AP, large people.")
    note: str | None = Field(default=None, description="What the evaluation had to say.")


class BodyPoseExportStatus(ApiModel):
    """Observed state, from facts the Jobs reported."""

    observedGeneration: int | None = Field(
        default=None, description="Generation the status describes."
    )
    phase: Literal["Pending", "Exporting", "Building", "Ready", "Failed"] | None = Field(
        default=None, description="Overall phase."
    )
    contentKey: str | None = Field(
        default=None, description="Key of the artifact set (digest + settings)."
    )
    readyTargets: str | None = Field(
        default=None, description="Ready targets out of all, e.g. 2/3."
    )
    resolution: str | None = Field(default=None, description="Input resolution, HEIGHTxWIDTH.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, Exported, Calibrated, Built; Reconciling and Stalled while they hold.",
        # A list-map keyed by type (API conventions): one condition per type, merged by it.
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    artifacts: SharedArtifacts | None = Field(
        default=None, description="Artifacts shared by all targets."
    )
    targets: list[TargetStatus] = Field(default_factory=list, description="Per-target results.")
    exportRetries: int | None = Field(
        default=None,
        description="Export attempts that failed for a reason a retry may cure and were "
        "retried by the Job's back-off (why: the Exported condition's message).",
    )
    exportQueue: QueueStatus | None = Field(
        default=None,
        description="While the export Job waits in its Kueue queue: which queue, and why.",
    )
    evaluation: EvaluationStatus | None = Field(
        default=None, description="The FP32 model's AP on the evaluation set (the reference)."
    )
    worstApDrop: float | None = Field(
        default=None, description="The largest AP drop of any target (kubectl get -o wide)."
    )
    slowestLatencyMs: float | None = Field(
        default=None,
        description="The largest batch-1 median latency of any target that was timed (ms).",
    )
