"""Job manifests for the export stage and the per-target build stage.

Pure functions: resource in, manifest dict out, so they are tested without a
cluster. Every pod runs with the restricted Pod Security Standard
(https://kubernetes.io/docs/concepts/security/pod-security-standards/#restricted):
non-root, no privilege escalation, all capabilities dropped, RuntimeDefault
seccomp, and a read-only root filesystem with two emptyDir volumes, /scratch (the
working directory, HOME and TMPDIR) and /tmp (for libraries that ignore TMPDIR).
Images: export Jobs run `settings.export_job_image` (the CPU exporter image, or
one built on TAO's deploy container); a build Job runs the image its backend's
row in `api/backends.py` names, with that row's default resources and arguments.
File names come from the catalogue both images install (`bodypose_contract/artifacts.py`).
The model key reaches the export pod only as a `secretKeyRef` environment
variable (BODYPOSE_MODEL_KEY, which `bpnet-export` reads when `-k` is absent):
it never appears in args, so never in the Job spec.

Kueue: a Job with a queue (`queue_of`: the spec's, else the operator's default) is
created suspended with the `kueue.x-k8s.io/queue-name` label on the Job (not on its
pods: Kueue manages the Job). Kueue unsuspends it on admission; the operator never
does, and never updates a Job it made (it only creates and deletes them), so what
Kueue injects on admission stays as Kueue wrote it.
"""

from __future__ import annotations

from typing import Any

from bodypose_contract import target as contract_target
from bodypose_contract.artifacts import (
    DEPLOY_INFIX,
    MODEL_STEM,
    Kind,
    file_name,
)
from bodypose_operator.api.backends import (
    BACKENDS,
    TARGET_OPTIONS,
)
from bodypose_operator.api.capabilities import (
    ChecksGpuProduct,
    Int8ByCpuClass,
    Int8Routes,
    SharesTimingCache,
    TakesArguments,
)
from bodypose_operator.api.queues import QUEUE_LABEL
from bodypose_operator.api.v1alpha1 import GROUP, KIND, VERSION, BodyPoseExportSpec, Target
from bodypose_operator.builders.naming import (
    LABEL_CONTENT_KEY,
    LABEL_GENERATION,
    LABEL_IDENTITY,
    LABEL_JOB_SPEC,
    LABEL_RESOURCE,
    LABEL_STAGE,
    LABEL_TARGET,
    job_name,
    job_spec_hash,
)
from bodypose_operator.settings import Settings

SCRATCH = "/scratch"
TMP = "/tmp"  # an emptyDir of its own, as /scratch
TERMINATION_LOG = "/dev/termination-log"
KEY_ENV = "BODYPOSE_MODEL_KEY"
ETLT_NAME = file_name(Kind.ETLT)


def artifact_prefix(spec: BodyPoseExportSpec, namespace: str, name: str, key: str) -> str:
    """s3://<output>/<namespace>/<name>/<contentKey>: where one artifact set lives."""
    return f"{spec.output.uri.rstrip('/')}/{namespace}/{name}/{key}"


#: Under the output prefix, beside the resources' folders: the timing caches the builds
#: share, one file per GPU model and TensorRT version (docs/architecture.md, "S3 layout").
TIMING_CACHES_DIR = ".timing-caches"


def timing_cache_dir(spec: BodyPoseExportSpec) -> str:
    """`<output>/.timing-caches`: every resource writing there shares its builds' timings."""
    return f"{spec.output.uri.rstrip('/')}/{TIMING_CACHES_DIR}"


def target_prefix(prefix: str, target: str, identity: str) -> str:
    """`<prefix>/targets/<target>/<identity>`: where one target's artifact and manifest live.

    The identity (`builders.naming.target_identity`) is in the path so that an artifact
    built for what the target was (another pool, another backend) is never found where
    the target as it is now looks for its own."""
    return contract_target.target_prefix(prefix, target, identity)


def _owner_reference(resource: dict[str, Any]) -> dict[str, Any]:
    meta = resource["metadata"]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


# The exporter's exit codes that no retry changes (bodypose_exporter.errors: UserError 2,
# a gate that failed 3).
PERMANENT_EXIT_CODES = (2, 3)
PERMANENT_FAILURE_RULE = {
    "action": "FailJob",
    "onExitCodes": {"operator": "In", "values": list(PERMANENT_EXIT_CODES)},
}


def _security_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


#: The keys of the resource's credentials Secret (spec.output.credentialsSecretRef) a Job's
#: pod gets: the names boto3 and the AWS CLI read from the environment
#: (https://docs.aws.amazon.com/cli/latest/userguide/cli-configure-envvars.html), the same
#: ones controller/credentials.py reads for the operator's own S3 calls. The pair is
#: required (the operator refuses a Secret without it before any Job exists); the rest may
#: be absent from the Secret.
S3_REQUIRED_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
S3_OPTIONAL_KEYS = (
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
)


def _s3_env(spec: BodyPoseExportSpec) -> list[dict[str, Any]]:
    """Each S3 key the pod needs as its own variable (`env[].valueFrom.secretKeyRef`), never
    the whole Secret (`envFrom`): whatever else a shared Secret holds never reaches the pod,
    its environment or a log of it. An optional key missing from the Secret is left unset
    (`optional: true`); a required one missing keeps the pod from starting (the kubelet's
    CreateContainerConfigError), as Kubernetes does."""
    ref = spec.output.credentialsSecretRef
    if ref is None:
        return []
    return [
        {
            "name": key,
            "valueFrom": {
                "secretKeyRef": {"name": ref.name, "key": key, "optional": key in S3_OPTIONAL_KEYS}
            },
        }
        for key in (*S3_REQUIRED_KEYS, *S3_OPTIONAL_KEYS)
    ]


def queue_of(spec: BodyPoseExportSpec, settings: Settings, stage: str) -> str | None:
    """The Kueue LocalQueue of a stage's Job: the export's own (exportQueueName), else the
    resource's (queueName), else the operator's default (the chart's jobs.queueName)."""
    own = spec.exportQueueName if stage == "export" else None
    return own or spec.queueName or settings.queue_name


def _base_job(
    resource: dict[str, Any],
    settings: Settings,
    name: str,
    labels: dict[str, str],
    image: str,
    container: dict[str, Any],
    pod_extra: dict[str, Any],
    queue: str | None = None,
) -> dict[str, Any]:
    meta = resource["metadata"]
    pod_labels = {**labels, **dict(settings.extra_pod_labels)}
    container = {
        "image": image,
        "imagePullPolicy": settings.pull_policy(image),
        "workingDir": SCRATCH,
        "securityContext": _security_context(),
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [
            {"name": "scratch", "mountPath": SCRATCH},
            {"name": "tmp", "mountPath": TMP},
        ],
        **container,
    }
    container["env"] = [
        {"name": "HOME", "value": SCRATCH},
        {"name": "TMPDIR", "value": SCRATCH},
        {"name": "BODYPOSE_TERMINATION_LOG", "value": TERMINATION_LOG},
        *container.get("env", []),
    ]
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "runAsGroup": 1000,
            "fsGroup": 1000,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [
            {"name": "scratch", "emptyDir": {"sizeLimit": settings.scratch_size_limit}},
            {"name": "tmp", "emptyDir": {}},
        ],
        **pod_extra,
    }
    if settings.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": n} for n in settings.image_pull_secrets]
    if settings.job_service_account:
        pod_spec["serviceAccountName"] = settings.job_service_account
    pod_spec["automountServiceAccountToken"] = False
    job: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": labels,
            "ownerReferences": [_owner_reference(resource)],
        },
        "spec": {
            "backoffLimit": settings.backoff_limit,
            "activeDeadlineSeconds": settings.active_deadline_seconds,
            # The exporter exits 2 on bad input and 3 on a failed gate: the same pod again
            # would fail the same way, so those fail the Job at once; a crash, an OOM kill
            # or a lost node (any other exit) gets the retry (Kubernetes' pod failure policy).
            "podFailurePolicy": {"rules": [PERMANENT_FAILURE_RULE]},
            "template": {"metadata": {"labels": pod_labels}, "spec": pod_spec},
        },
    }
    if settings.ttl_seconds_after_finished is not None:
        job["spec"]["ttlSecondsAfterFinished"] = settings.ttl_seconds_after_finished
    if queue is not None:
        # Kueue's: it starts the Job on admission (and suspends it again on preemption).
        job["metadata"]["labels"] = {**labels, QUEUE_LABEL: queue}
        job["spec"]["suspend"] = True
    return job


def _named(job: dict[str, Any], stage: str, key: str, target: str | None = None) -> dict[str, Any]:
    """Name the Job from what it runs (`naming.job_name` says why), and label it so."""
    spec_hash = job_spec_hash(job)
    resource = job["metadata"]["labels"][LABEL_RESOURCE]
    job["metadata"]["name"] = job_name(resource, stage, key, target, spec_hash)
    job["metadata"]["labels"][LABEL_JOB_SPEC] = spec_hash
    return job


def _labels(
    resource: dict[str, Any], stage: str, key: str, target: str | None = None
) -> dict[str, str]:
    meta = resource["metadata"]
    labels = {
        "app.kubernetes.io/name": "bodypose-export",
        "app.kubernetes.io/managed-by": "bodypose-operator",
        LABEL_RESOURCE: meta["name"],
        LABEL_GENERATION: str(meta.get("generation", 1)),
        LABEL_STAGE: stage,
        LABEL_CONTENT_KEY: key,
    }
    if target:
        labels[LABEL_TARGET] = target
    return labels


def export_args(spec: BodyPoseExportSpec, prefix: str) -> list[str]:
    """`bpnet-export` arguments for the export stage (the key comes from the environment)."""
    args = [
        "-m", spec.model.uri,
        "-d", f"{spec.input.height},{spec.input.width},{spec.input.channels}",
        "-o", f"{prefix}/{ETLT_NAME}",
        "--data_format", spec.input.dataFormat,
    ]  # fmt: skip
    if spec.model.experimentSpecUri:
        args += ["-e", spec.model.experimentSpecUri]
    if spec.engine.sdkCompatible:
        args.append("--sdk_compatible_model")
    if spec.precision == "fp16":
        args += ["--data_type", "fp16"]  # publishes the FP16 model beside the FP32 one
    if spec.precision == "int8" and spec.calibration is not None:
        cal = spec.calibration
        args += [
            "--data_type", "int8",
            "--batches", str(cal.batches),
            "--batch_size", str(cal.batchSize),
            # Reused when it names an existing cal.bin; else a scratch file (the
            # published copy is <prefix>/cal.bin either way).
            "--cal_cache_file", cal.cacheUri or f"{SCRATCH}/{file_name(Kind.CALIBRATION_CACHE)}",
        ]  # fmt: skip
        if cal.imagesUri:
            args += ["--cal_image_dir", cal.imagesUri]
        if cal.tensorfileUri:
            args += ["--cal_data_file", cal.tensorfileUri]
        if cal.forcePtq:
            args.append("--force_ptq")
        if cal.method != "entropy":
            args += ["--cal_method", cal.method]
    return args + _evaluation_args(spec)


def _evaluation_args(spec: BodyPoseExportSpec) -> list[str]:
    """The evaluation set, the same for the export (the FP32 reference) and each build."""
    ev = spec.evaluation
    if ev is None:
        return []
    args = ["--eval_annotations", ev.annotationsUri, "--eval_images", ev.imagesUri]
    if ev.maxImages is not None:
        args += ["--eval_max_images", str(ev.maxImages)]
    return args


def build_export_job(
    resource: dict[str, Any], spec: BodyPoseExportSpec, key: str, settings: Settings
) -> dict[str, Any]:
    """The one export Job of a content key: decrypt, convert, encrypt (no GPU)."""
    meta = resource["metadata"]
    prefix = artifact_prefix(spec, meta["namespace"], meta["name"], key)
    container = {
        "name": "export",
        "command": ["bpnet-export"],
        "args": export_args(spec, prefix),
        "env": [
            {
                "name": KEY_ENV,
                "valueFrom": {
                    "secretKeyRef": {
                        "name": spec.model.keySecretRef.name,
                        "key": spec.model.keySecretRef.key,
                    }
                },
            },
            *_s3_env(spec),
        ],
        "resources": {"requests": {"cpu": "1", "memory": "4Gi"}, "limits": {"memory": "16Gi"}},
    }
    job = _base_job(
        resource,
        settings,
        "",
        _labels(resource, "export", key),
        settings.export_job_image,
        container,
        {},
        queue_of(spec, settings, "export"),
    )
    return _named(job, "export", key)


def engine_file_name(spec: BodyPoseExportSpec, target: Target) -> str:
    """TAO's engine name, bpnet_model.$H.$W.$precision.engine (.deploy.engine for the
    SDK-compatible graph), with the suffix of what the backend writes (an ONNX Runtime
    artifact is an ONNX model, `.onnx`). The build stage adds the compatibility record
    to a TensorRT engine's name (sm86.trt10...), which only the GPU knows; the
    manifest names the file as written."""
    stem = f"{MODEL_STEM}.{spec.input.height}.{spec.input.width}.{spec.precision}"
    deploy = DEPLOY_INFIX if spec.engine.sdkCompatible else ""
    return f"{stem}{deploy}{BACKENDS[target.backend].artifact_suffix}"


def target_resources(target: Target) -> dict[str, Any]:
    """The target's own resources, else its backend's defaults, with the CPU request equal
    to the CPU limit: every build times its engine where it can run it, and a figure must
    belong to a known share of the node (a pod whose CPU request equals its limit gets
    that much and no more). The one named sets the other; neither: the backend's CPU, if
    it names one (TensorRT's does not: CUDA events time the GPU). Requests and limits
    that differ are refused before (`api.v1alpha1.Resources`)."""
    if target.resources is None:
        return BACKENDS[target.backend].resources()
    resources = target.resources.model_dump(exclude_defaults=False)
    requests, limits = resources.setdefault("requests", {}), resources.setdefault("limits", {})
    cpu = requests.get("cpu") or limits.get("cpu") or BACKENDS[target.backend].cpu
    if cpu is not None:
        requests["cpu"] = limits["cpu"] = cpu
    return resources


# The label NVIDIA's GPU feature discovery puts on GPU nodes (e.g. NVIDIA-A100-SXM4-80GB).
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"


def build_args(
    spec: BodyPoseExportSpec,
    target: Target,
    prefix: str,
    identity: str,
    shared: str | None = None,
    int8_class: str | None = None,
    latency_budget: float | None = None,
) -> list[str]:
    """`bpnet-build` arguments: the shared artifacts (under `shared`, default `prefix`) in,
    one target's engine out (under `prefix`, in the folder of the target's identity, which
    its manifest records). `int8_class`: the CPU class the pool's nodes have, which the
    artifact is built for (the build refuses a node of another). `latency_budget`: the
    operator's `latency_budget_seconds` (None: the exporter's default)."""
    shared = shared or prefix
    backend = BACKENDS[target.backend]
    part = backend.part
    folder = target_prefix(prefix, target.name, identity)
    engine = f"{folder}/{engine_file_name(spec, target)}"
    args = [
        "--onnx", f"{shared}/{file_name(Kind.ONNX)}",
        "--data_type", spec.precision,
        "--engine_backend", backend.name,
        "--max_batch_size", str(spec.engine.maxBatchSize),
        "--max_workspace_size", str(spec.engine.maxWorkspaceSize),
        "--engine_file", engine,
        "--reference", f"{shared}/{file_name(Kind.REFERENCE)}",
        contract_target.IDENTITY_FLAG, identity,
    ]  # fmt: skip
    if spec.precision == "int8":
        args += [
            "--cal_cache_file",
            f"{shared}/{file_name(Kind.CALIBRATION_CACHE)}",
            "--qdq_model",
            f"{shared}/{file_name(Kind.QDQ_MODEL)}",
        ]
    if spec.precision == "fp16":
        # Strongly typed fp16 engines are built from it (an export made before it existed
        # has none: the build then takes the route its backend has without it).
        args += ["--fp16_model", f"{shared}/{file_name(Kind.FP16_ONNX)}"]
    if int8_class is not None and spec.precision == "int8" and isinstance(part, Int8ByCpuClass):
        args += part.int8_class_arguments(int8_class)
    if spec.engine.strictTypeConstraints:
        args.append("-s")
    if spec.evaluation is not None:
        # The engine is gated against the FP32 model's AP the export recorded.
        args += [
            *_evaluation_args(spec),
            "--eval_reference",
            f"{shared}/{file_name(Kind.EVALUATION)}",
        ]
        if spec.evaluation.maxApDrop is not None:
            args += ["--max_ap_drop", str(spec.evaluation.maxApDrop)]
        if spec.engine.sdkCompatible:
            # Evaluate the plain graph's engine, publish the SDK-compatible one built
            # from the same calibration beside it (the AP gate needs the plain graph's
            # outputs; DeepStream's bodypose2d app needs the SDK-compatible one).
            args += ["--deploy_onnx", f"{shared}/{file_name(Kind.DEPLOY_ONNX)}"]
    if latency_budget is not None:
        args += ["--latency_budget", f"{latency_budget:g}"]
    return args + _backend_args(spec, target) + _gate_args(spec)


def _backend_args(spec: BodyPoseExportSpec, target: Target) -> list[str]:
    """The arguments only the target's backend takes: the target options its row accepts,
    then what its operator part gives (the interfaces of `api/capabilities.py`; the values
    of the target's `backendOptions` map reach the build only this way, through the part
    that declared their keys, `TakesArguments`)."""
    backend = BACKENDS[target.backend]
    args: list[str] = []
    for option in TARGET_OPTIONS:
        if option.field not in backend.options:
            continue
        value = getattr(target, option.field)
        if not option.is_set(value) and option.from_pool is not None:
            value = option.from_pool(target.nodeSelector)
        args += [option.flag, option.argument(value)]
    part = backend.part
    # What the operator knows (the pool's GPU, the route asked for, where the caches
    # are) goes to the part of a backend that takes it, which spells the arguments.
    product = target.nodeSelector.get(GPU_PRODUCT_LABEL)
    if isinstance(part, ChecksGpuProduct) and product:
        args += part.gpu_product_arguments(product)
    route = spec.engine.int8Route
    if isinstance(part, Int8Routes) and spec.precision == "int8" and route != "auto":
        args += part.int8_route_arguments(route)
    if isinstance(part, SharesTimingCache):
        args += part.timing_cache_arguments(timing_cache_dir(spec))
    if isinstance(part, TakesArguments):
        args += part.build_arguments(spec, target)
    return args


def _gate_args(spec: BodyPoseExportSpec) -> list[str]:
    """The verification gates the resource sets (unset: the exporter's per-precision defaults)."""
    args: list[str] = []
    gates = spec.verification
    for flag, value in (
        ("--max_abs_diff", gates.maxAbsDiff),
        ("--min_cosine", gates.minCosine),
        ("--min_peak_agreement", gates.minPeakAgreement),
    ):
        if value is not None:
            args += [flag, str(value)]
    return args


def build_target_job(
    resource: dict[str, Any],
    spec: BodyPoseExportSpec,
    target: Target,
    key: str,
    settings: Settings,
    identity: str,
    shared: str | None = None,
    int8_class: str | None = None,
) -> dict[str, Any]:
    """One build Job per target, on that target's pool and hardware, for its identity
    (`builders.naming.target_identity`).

    `shared`: where the export stage's artifacts are, when another resource with
    the same content made them (default: this resource's own prefix).
    """
    meta = resource["metadata"]
    prefix = artifact_prefix(spec, meta["namespace"], meta["name"], key)
    container = {
        "name": "build",
        "command": ["bpnet-build"],
        "args": build_args(
            spec, target, prefix, identity, shared, int8_class, settings.latency_budget_seconds
        ),
        "env": _s3_env(spec),
        "resources": target_resources(target),
    }
    pod_extra: dict[str, Any] = {
        "nodeSelector": dict(target.nodeSelector),
        "tolerations": [t.model_dump(exclude_none=True) for t in target.tolerations],
    }
    labels = {**_labels(resource, "build", key, target.name), LABEL_IDENTITY: identity}
    job = _base_job(
        resource,
        settings,
        "",
        labels,
        settings.build_image(target.backend),
        container,
        pod_extra,
        queue_of(spec, settings, "build"),
    )
    return _named(job, "build", key, target.name)
