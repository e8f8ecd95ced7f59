"""BodyPoseExport, group bodypose.dev, version v1alpha1: spec and status models.

These models are the single source of the resource's schema: `api.crd`
turns them into the CRD's structural OpenAPI schema (descriptions become
`kubectl explain` text, `x-kubernetes-validations` CEL rules come from the
`cel` entries below), and the operator re-validates every object with them.
Field names are camelCase as the Kubernetes API conventions ask
(https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, cast, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from bodypose_operator.api.backends import (
    BACKENDS,
    COMPUTE_CAPABILITIES,
    COMPUTE_MAJOR_LABEL,
    COMPUTE_MINOR_LABEL,
    DEFAULT_BACKEND,
    HARDWARE_COMPATIBILITY,
    TARGET_OPTIONS,
    Backend,
    TargetOption,
    accepting,
    describe_resources,
)
from bodypose_operator.api.queues import queue_name_problem, queue_name_schema

GROUP = "bodypose.dev"
VERSION = "v1alpha1"
KIND = "BodyPoseExport"
PLURAL = "bodyposeexports"
SINGULAR = "bodyposeexport"
SHORT_NAME = "bpe"

S3_URI_PATTERN = r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


def cel(rule: str, message: str) -> dict[str, str]:
    """One x-kubernetes-validations entry."""
    return {"rule": rule, "message": message}


if TYPE_CHECKING:
    BackendName = str
else:
    # The table's names as a Literal: the CRD's enum, and pydantic's own "Input should
    # be ..." message, exactly as a Literal written out by hand gives them.
    BackendName = Literal[tuple(BACKENDS)]


def _names(names: list[str]) -> str:
    return " and ".join(names)


class ApiModel(BaseModel):
    """Base: camelCase on the wire, unknown fields refused (as a structural schema prunes)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SecretKeyRef(ApiModel):
    name: str = Field(
        min_length=1, max_length=253, description="Name of a Secret in the resource's namespace."
    )
    key: str = Field(min_length=1, max_length=253, description="Key inside that Secret.")


class SecretRef(ApiModel):
    name: str = Field(
        min_length=1, max_length=253, description="Name of a Secret in the resource's namespace."
    )


class ModelSource(ApiModel):
    uri: str = Field(
        pattern=S3_URI_PATTERN,
        description="s3:// URI of the trained BodyPoseNet .tlt (encrypted Keras model).",
    )
    keySecretRef: SecretKeyRef = Field(
        description="The Secret key holding the model's encryption key (TAO's -k). It reaches "
        "the export pod only as a secretKeyRef environment variable."
    )
    experimentSpecUri: str | None = Field(
        default=None,
        pattern=S3_URI_PATTERN,
        description="Optional s3:// URI of the TAO experiment spec (normalization parameters).",
    )


class InputSpec(ApiModel):
    height: int = Field(
        ge=8,
        le=4096,
        description="Network input height in pixels: a multiple of 8 "
        "(multiples of 16, 32 or 64 are better).",
    )
    width: int = Field(
        ge=8,
        le=4096,
        description="Network input width in pixels: a multiple of 8 "
        "(multiples of 16, 32 or 64 are better).",
    )
    channels: Literal[3] = Field(default=3, description="Input channels: 3 (RGB).")
    dataFormat: Literal["channels_last"] = Field(
        default="channels_last", description="Input layout: channels_last (NHWC), as TAO trains it."
    )


class CalibrationSpec(ApiModel):
    imagesUri: str | None = Field(
        default=None,
        pattern=S3_URI_PATTERN,
        description="s3:// prefix of calibration images (.jpg, .jpeg, .png); they must number "
        "at least batches x batchSize.",
    )
    tensorfileUri: str | None = Field(
        default=None,
        pattern=S3_URI_PATTERN,
        description="s3:// URI of a calibration tensorfile to reuse.",
    )
    cacheUri: str | None = Field(
        default=None,
        pattern=S3_URI_PATTERN,
        description="s3:// URI of a cal.bin to reuse (skips calibration).",
    )
    batches: int = Field(
        default=10, ge=1, le=100_000, description="Calibration batches (TAO's --batches)."
    )
    batchSize: int = Field(
        default=1, ge=1, le=256, description="Images per calibration batch (TAO's --batch_size)."
    )
    forcePtq: bool = Field(
        default=False, description="Force post-training quantization (TAO's --force_ptq)."
    )
    method: Literal["entropy", "minmax", "percentile"] = Field(
        default="entropy",
        description="How each tensor's range is chosen from its histogram (bpnet-export "
        "--cal_method): entropy (TensorRT's KL search, TAO's default), minmax (the largest "
        "value seen, never clipped) or percentile (99.99th). Entropy clips sparse tensors hard: "
        "a network whose heatmaps and PAFs are mostly zero may agree better with percentile.",
    )


class EngineSpec(ApiModel):
    maxBatchSize: int = Field(
        default=1, ge=1, le=256, description="Largest batch the engine accepts."
    )
    maxWorkspaceSize: int = Field(
        default=2 * (1 << 30),
        ge=1 << 20,
        description="TensorRT workspace memory-pool limit, bytes.",
    )
    strictTypeConstraints: bool = Field(
        default=False, description="Make TensorRT obey the requested precision (TAO's -s)."
    )
    sdkCompatible: bool = Field(
        default=False,
        description="Add the PAF upsampling DeepStream's bodypose2d app expects "
        "(TAO's --sdk_compatible_model).",
    )
    int8Route: Literal["auto", "qdq", "calBin"] = Field(
        default="auto",
        description=f"How a {_names([n for n, b in BACKENDS.items() if b.int8_routes])} "
        "target builds int8: qdq, a strongly typed network from "
        "the explicitly quantized ONNX (TensorRT 10 and later); calBin, TensorRT's implicit "
        "calibrator reading cal.bin (deprecated since TensorRT 10.1, what TAO and DeepStream "
        "read); auto, qdq where the TensorRT in the build image supports it.",
    )


class Toleration(ApiModel):
    key: str | None = Field(default=None, description="Taint key the toleration applies to.")
    operator: Literal["Exists", "Equal"] | None = Field(
        default=None, description="Exists or Equal."
    )
    value: str | None = Field(default=None, description="Taint value for operator Equal.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect to match; empty matches all."
    )
    tolerationSeconds: int | None = Field(
        default=None, description="For NoExecute: how long to stay bound."
    )


#: A build times its engine on the pod's share of the node, so that share must be known: a
#: CPU request below its limit would time on whatever the node had spare.
CPU_REQUEST_IS_LIMIT = (
    "a build's CPU request equals its CPU limit (its latency is timed on that share of the "
    "node): set requests.cpu or limits.cpu, or both to the same amount"
)


class Resources(ApiModel):
    """The build pod's resources. Its CPU request and limit are equal (the build Job sets
    the one not named to the other; a default when neither is). Two that differ are
    refused by the operator, not at admission: a CEL rule reading a value of these maps
    (string or quantity comparison) exceeds the API server's cost budget 100 times over
    on Kubernetes 1.37, whatever maxLength the values are given."""

    requests: dict[str, str] = Field(default_factory=dict, description="Resource requests.")
    limits: dict[str, str] = Field(default_factory=dict, description="Resource limits.")

    @model_validator(mode="after")
    def _cpu_request_is_limit(self) -> Resources:
        from kubernetes.utils.quantity import parse_quantity

        asked, limit = self.requests.get("cpu"), self.limits.get("cpu")
        if asked is None or limit is None:
            return self
        try:
            same = bool(parse_quantity(asked) == parse_quantity(limit))  # type: ignore[no-untyped-call]
        except ValueError as exc:
            raise ValueError(f"cpu: {exc}") from None
        if not same:
            raise ValueError(
                f"{CPU_REQUEST_IS_LIMIT}; got requests.cpu {asked}, limits.cpu {limit}"
            )
        return self


class Target(ApiModel):
    name: str = Field(
        min_length=1,
        max_length=40,
        pattern=DNS_LABEL_PATTERN,
        description="Target name: a DNS label, unique in the resource; names its engine and Job.",
    )
    # A label value is at most 63 characters (Kubernetes' own rule); bounded here so that the
    # API server can afford the CEL rule that reads the GPU labels (`capability_rules`).
    nodeSelector: dict[str, Annotated[str, Field(max_length=63)]] = Field(
        default_factory=dict, description="Node labels of the pool to build on (its own hardware)."
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, description="Tolerations for the pool's taints."
    )
    resources: Resources | None = Field(
        default=None,
        description=f"Build pod resources. Default, by backend: {describe_resources()}.",
    )
    backend: BackendName = Field(
        default=DEFAULT_BACKEND,
        description="Which builder makes the target's artifact: "
        + "; ".join(f"{name}, {row.summary}" for name, row in BACKENDS.items())
        + ".",
    )
    hardwareCompatibility: Literal["none", "ampere+"] = Field(
        default="none",
        description=f"{_names(accepting(HARDWARE_COMPATIBILITY))} only: none builds for the "
        "pool's GPU alone; ampere+ builds an engine that loads on any Ampere or newer GPU "
        "(TensorRT's hardware-compatibility level, somewhat slower). Part of the engine's "
        "compatibility record.",
    )
    computeCapabilities: list[Annotated[str, Field(pattern=r"^[0-9]+\.[0-9]+$")]] = Field(
        default_factory=list,
        max_length=8,
        description=f"{_names(accepting(COMPUTE_CAPABILITIES))} only: the GPUs' compute "
        'capabilities to build the engine for ahead of time, e.g. ["8.9"] (L4, L40S); '
        "default: the pool's, from its nodeSelector's nvidia.com/gpu.compute.major and .minor "
        "labels (GPU feature discovery's).",
    )


class OutputSpec(ApiModel):
    uri: str = Field(
        pattern=S3_URI_PATTERN,
        description="s3:// prefix; artifacts go under <prefix>/<namespace>/<name>/<contentKey>/.",
    )
    credentialsSecretRef: SecretRef | None = Field(
        default=None,
        description="Secret with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and optionally "
        "AWS_ENDPOINT_URL for the output bucket (and the model's, if the same store).",
    )


class EvaluationSpec(ApiModel):
    """The accuracy check: OKS keypoint AP (COCO's keypoint metric) of the FP32 model and
    of every target's engine on the user's own set, strict mode, TAO's bottom-up decoding
    (the exporter's `evaluation` package)."""

    annotationsUri: str = Field(
        pattern=S3_URI_PATTERN,
        description="s3:// of a COCO person-keypoints annotations JSON (17 joints).",
    )
    imagesUri: str = Field(
        pattern=S3_URI_PATTERN,
        description="s3:// prefix of the images the annotations name (by file_name).",
    )
    maxImages: int | None = Field(
        default=None, ge=1, le=100_000, description="Evaluate at most this many images."
    )
    maxApDrop: float | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Largest drop of a target's AP below the FP32 model's, in AP points "
        "(AP x 100). Default by precision: 0.5 for fp32 and fp16, 3 for int8 (an INT8 "
        "engine is expected within 2-3% of the .tlt's accuracy).",
    )


class VerificationSpec(ApiModel):
    maxAbsDiff: float | None = Field(
        default=None, gt=0, description="Gate: max |engine - FP32 reference|."
    )
    minCosine: float | None = Field(
        default=None, ge=0, le=1, description="Gate: min cosine similarity of heatmaps and PAFs."
    )
    minPeakAgreement: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Gate: min share of heatmap peaks at the same location.",
    )


Precision = Literal["fp32", "fp16", "int8"]


def _is_backend(names: list[str], default: str = DEFAULT_BACKEND) -> str:
    """CEL: target `t` builds with one of `names` (a target naming none, with the default)."""
    unnamed = ["!has(t.backend)"] if default in names else []
    return " || ".join([*unnamed, *(f"t.backend == '{name}'" for name in names)])


def option_rule(option: TargetOption, backends: dict[str, Backend] = BACKENDS) -> dict[str, str]:
    """A target may set `option` only with a backend whose row accepts it."""
    names, f = accepting(option, backends), option.field
    unset = f"size(t.{f}) == 0" if option.listed else f"t.{f} == '{option.unset}'"
    return cel(
        f"self.targets.all(t, !has(t.{f}) || {unset} || {_is_backend(names)})",
        f"{option.refused} applies to {_names(names)} targets only",
    )


def capability_rules(backend: Backend) -> list[dict[str, str]]:
    """A backend that builds for named compute capabilities: only those it has, and some
    named (on the target, or by the pool's GPU feature discovery labels). The labels name
    what the build is for when the target names none (`builders.jobs`), so they are held
    to the same list, with the same message: a Hopper pool by its labels is refused as
    `computeCapabilities: ["9.0"]` is."""
    listed = ", ".join(f"'{c}'" for c in backend.compute_capabilities)
    mine = _is_backend([backend.name], default="")
    labels = (f"has(t.nodeSelector) && '{COMPUTE_MAJOR_LABEL}' in t.nodeSelector && "
              f"'{COMPUTE_MINOR_LABEL}' in t.nodeSelector")  # fmt: skip
    named = "has(t.computeCapabilities) && size(t.computeCapabilities) > 0"
    pool = (f"t.nodeSelector['{COMPUTE_MAJOR_LABEL}'] + '.' + "
            f"t.nodeSelector['{COMPUTE_MINOR_LABEL}']")  # fmt: skip
    return [
        cel(
            f"self.targets.all(t, !({mine}) || ({named} ? "
            f"t.computeCapabilities.all(c, c in [{listed}]) : "
            f"(!({labels}) || ({pool}) in [{listed}])))",
            f"computeCapabilities: {backend.name} builds for "
            f"{', '.join(backend.compute_capabilities)} only (9.0 is Hopper, where its engines "
            "do not run: build those with tensorrt)",
        ),
        cel(
            f"self.targets.all(t, !({mine}) || ({named}) || ({labels}))",
            f"{backend.name} targets name the GPUs to build for: computeCapabilities, or a "
            f"nodeSelector with {COMPUTE_MAJOR_LABEL} and {COMPUTE_MINOR_LABEL}",
        ),
    ]


def pool_capability(node_selector: dict[str, str]) -> str | None:
    """`8.9` from a nodeSelector's GPU feature discovery labels, or None without both."""
    if not {COMPUTE_MAJOR_LABEL, COMPUTE_MINOR_LABEL} <= set(node_selector):
        return None
    return f"{node_selector[COMPUTE_MAJOR_LABEL]}.{node_selector[COMPUTE_MINOR_LABEL]}"


CAPABILITY_RULES = {
    name: capability_rules(row) for name, row in BACKENDS.items() if row.compute_capabilities
}


def precision_rule(backend: Backend) -> dict[str, str]:
    """The resource's precision must be one each of its targets' backends builds."""
    listed = ", ".join(f"'{p}'" for p in backend.precisions)
    return cel(
        f"self.targets.all(t, !({_is_backend([backend.name])}) || self.precision in [{listed}])",
        f"{backend.name} targets build {_names(list(backend.precisions))} only",
    )


#: One rule per target option (by field), and one per backend that does not build every
#: precision (by name): a backend that builds all three needs none.
OPTION_RULES = {option.field: option_rule(option) for option in TARGET_OPTIONS}
PRECISION_RULES = {
    name: precision_rule(row)
    for name, row in BACKENDS.items()
    if set(get_args(Precision)) - set(row.precisions)
}

SPEC_RULES = [
    cel(
        "self.input.height % 8 == 0 && self.input.width % 8 == 0",
        "input.height and input.width must be multiples of 8 (preferably of 16, 32 or 64)",
    ),
    cel(
        "self.precision != 'int8' || (has(self.calibration) && (has(self.calibration.imagesUri) "
        "|| has(self.calibration.tensorfileUri) || has(self.calibration.cacheUri)))",
        "precision int8 needs a calibration source: "
        "calibration.imagesUri, tensorfileUri or cacheUri",
    ),
    cel(
        "self.targets.all(t, self.targets.exists_one(u, u.name == t.name))",
        "target names must be unique",
    ),
    cel(
        "!has(self.calibration) "
        "|| self.calibration.batches * self.calibration.batchSize <= 1000000",
        "calibration.batches x calibration.batchSize must be at most 1000000 images",
    ),
    *OPTION_RULES.values(),
    *PRECISION_RULES.values(),
    *(rule for rules in CAPABILITY_RULES.values() for rule in rules),
]


class BodyPoseExportSpec(ApiModel):
    """Desired state: which model to export, how, and for which node pools."""

    model: ModelSource = Field(description="The trained model and its key.")
    input: InputSpec = Field(description="Network input resolution.")
    precision: Precision = Field(
        default="fp32", description="Engine precision: fp32, fp16 or int8."
    )
    calibration: CalibrationSpec | None = Field(
        default=None, description="INT8 calibration (required for int8)."
    )
    # `default: {}` in the CRD lets the API server fill the nested defaults.
    engine: EngineSpec = Field(
        default_factory=EngineSpec,
        description="Engine build settings.",
        json_schema_extra={"default": {}},
    )
    targets: Annotated[list[Target], Field(min_length=1, max_length=32)] = Field(
        description="Node pools to build an engine for, one build Job each."
    )
    output: OutputSpec = Field(description="Where artifacts go.")
    verification: VerificationSpec = Field(
        default_factory=VerificationSpec,
        json_schema_extra={"default": {}},
        description="Accuracy gates; unset fields use per-precision defaults.",
    )
    evaluation: EvaluationSpec | None = Field(
        default=None,
        description="Optional: OKS keypoint AP of the FP32 model and of each target's engine "
        "on this set; a target whose AP drops more than maxApDrop fails.",
    )
    queueName: str | None = Field(
        default=None,
        description="Kueue: the LocalQueue (in this namespace) the resource's Jobs wait in. "
        "Each is created suspended with the kueue.x-k8s.io/queue-name label, Kueue starts it "
        "once its ClusterQueue has quota for it (on a ResourceFlavor: a GPU pool), and the "
        "status says why a Job waits (Queued, in Kueue's words). Default: the operator's "
        "(the chart's jobs.queueName); none there either: Jobs start at once. Read when a "
        "Job is created: a Job already made keeps its queue.",
        json_schema_extra=queue_name_schema("queueName"),
    )
    exportQueueName: str | None = Field(
        default=None,
        description="Kueue: the LocalQueue of the export Job, which needs no GPU (e.g. one "
        "whose ClusterQueue has CPU quota). Default: queueName.",
        json_schema_extra=queue_name_schema("exportQueueName"),
    )

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={"x-kubernetes-validations": cast(Any, SPEC_RULES)},
    )

    @field_validator("queueName", "exportQueueName")
    @classmethod
    def _queue_name(cls, value: str | None, info: ValidationInfo) -> str | None:
        """The CEL rule of the field again, with its sentence."""
        problem = None if value is None else queue_name_problem(value, str(info.field_name))
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _same_rules_as_admission(self) -> BodyPoseExportSpec:
        """The CEL rules again: objects created before the CRD had them still get checked."""
        if self.input.height % 8 or self.input.width % 8:
            raise ValueError(SPEC_RULES[0]["message"])
        cal = self.calibration
        if self.precision == "int8" and not (
            cal and (cal.imagesUri or cal.tensorfileUri or cal.cacheUri)
        ):
            raise ValueError(SPEC_RULES[1]["message"])
        names = [t.name for t in self.targets]
        if len(names) != len(set(names)):
            raise ValueError(SPEC_RULES[2]["message"])
        for option in TARGET_OPTIONS:
            if any(
                option.is_set(getattr(t, option.field))
                and option.field not in BACKENDS[t.backend].options
                for t in self.targets
            ):
                raise ValueError(OPTION_RULES[option.field]["message"])
        for t in self.targets:
            supported = BACKENDS[t.backend].compute_capabilities
            if not supported:
                continue
            supported_rule, named_rule = CAPABILITY_RULES[t.backend]
            pool = pool_capability(t.nodeSelector)
            built_for = t.computeCapabilities or ([pool] if pool is not None else [])
            if any(c not in supported for c in built_for):
                raise ValueError(supported_rule["message"])
            if not built_for:
                raise ValueError(named_rule["message"])
        for t in self.targets:
            if self.precision not in BACKENDS[t.backend].precisions:
                raise ValueError(PRECISION_RULES[t.backend]["message"])
        return self


# ----- status -----


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
    batch: int = Field(description="The batch size timed.")


class Latency(ApiModel):
    batch1: LatencyFigures | None = Field(default=None, description="At batch 1.")
    batchMax: LatencyFigures | None = Field(default=None, description="At engine.maxBatchSize.")


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
        "selects (x86-vnni, x86-avx2, ...; x86: uint8 weights, right on every x86 CPU).",
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
    computeCapabilities: str | None = Field(
        default=None,
        description="tensorrt-rtx: the compute capabilities the engine was built for.",
    )
    tensorrtRtxVersion: str | None = Field(
        default=None, description="tensorrt-rtx: the TensorRT-RTX version that built it."
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


#: The TargetStatus fields a build's compatibility record fills (what the artifact was
#: built for: reuse needs them to match), in the order the status lists them.
COMPATIBILITY_FIELDS = (
    "gpuName",
    "computeCapability",
    "tensorrtVersion",
    "hardwareCompatibility",
    "instructionSet",
    "computeCapabilities",
    "tensorrtRtxVersion",
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


def parse_spec(raw: dict[str, Any]) -> BodyPoseExportSpec:
    return BodyPoseExportSpec.model_validate(raw)
