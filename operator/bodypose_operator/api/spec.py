"""BodyPoseExport's spec: what the user asks for, as pydantic models.

The models are the schema's single source: `api.crd` turns them into the CRD's
structural OpenAPI schema (descriptions become `kubectl explain` text), and the
operator re-validates every object with them. The admission rules, CEL and Python
check in one object each, are `api.admission`'s; the models place them on their
schema nodes and run their checks. Field names are camelCase as the Kubernetes API
conventions ask
(https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from bodypose_operator.api.admission import (
    SPEC_RULES,
    TARGET_RULES,
    describe_backend_options,
    first_problem,
    queue_name_problem,
    queue_name_schema,
    validations,
)
from bodypose_operator.api.backends import (
    BACKENDS,
    COMPUTE_CAPABILITIES,
    DEFAULT_BACKEND,
    HARDWARE_COMPATIBILITY,
    accepting,
    describe_resources,
)
from bodypose_operator.api.base import (
    DNS_LABEL_PATTERN,
    S3_URI_PATTERN,
    ApiModel,
    BackendName,
    Precision,
    and_list,
)
from bodypose_operator.api.capabilities import Int8Routes


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


#: The backends that take `engine.int8Route` (their parts are `Int8Routes`).
ROUTED = [name for name, row in BACKENDS.items() if isinstance(row.part, Int8Routes)]


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
        description=f"How a {and_list(ROUTED)} "
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


#: The most keys a target's backendOptions holds, and the longest value.
BACKEND_OPTIONS_MAX = 8
BACKEND_OPTION_MAX = 63


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
        description=f"{and_list(accepting(HARDWARE_COMPATIBILITY))} only: none builds for the "
        "pool's GPU alone; ampere+ builds an engine that loads on any Ampere or newer GPU "
        "(TensorRT's hardware-compatibility level, somewhat slower). Part of the engine's "
        "compatibility record.",
    )
    computeCapabilities: list[Annotated[str, Field(pattern=r"^[0-9]+\.[0-9]+$")]] = Field(
        default_factory=list,
        max_length=8,
        description=f"{and_list(accepting(COMPUTE_CAPABILITIES))} only: the GPUs' compute "
        'capabilities to build the engine for ahead of time, e.g. ["8.9"] (L4, L40S); '
        "default: the pool's, from its nodeSelector's nvidia.com/gpu.compute.major and .minor "
        "labels (GPU feature discovery's).",
    )
    # Bounded (keys, values) so that the API server can afford the rules reading it
    # (`admission.TARGET_RULES`); a backend's own rules bound a value further.
    backendOptions: dict[str, Annotated[str, Field(max_length=BACKEND_OPTION_MAX)]] = Field(
        default_factory=dict,
        max_length=BACKEND_OPTIONS_MAX,
        description="Options of the target's backend that are not fields of the target, by "
        "key, each a string; a key its backend does not declare is refused. "
        + describe_backend_options(),
    )

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={"x-kubernetes-validations": cast(Any, validations(TARGET_RULES))},
    )

    @model_validator(mode="after")
    def _same_rules_as_admission(self) -> Target:
        """The target node's CEL rules' own checks (its backend's options), with their words."""
        problem = first_problem(TARGET_RULES, self)
        if problem:
            raise ValueError(problem)
        return self


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
        json_schema_extra={"x-kubernetes-validations": cast(Any, validations(SPEC_RULES))},
    )

    @field_validator("queueName", "exportQueueName")
    @classmethod
    def _queue_name(cls, value: str | None, info: ValidationInfo) -> str | None:
        """The field's admission rule checked again (`admission.queue_name_rule`)."""
        problem = None if value is None else queue_name_problem(value, str(info.field_name))
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _same_rules_as_admission(self) -> BodyPoseExportSpec:
        """The CEL rules' own checks: objects created before the CRD had them still get
        checked, and refused with admission's sentence."""
        problem = first_problem(SPEC_RULES, self)
        if problem:
            raise ValueError(problem)
        return self
