"""What each build backend supports: the one list the exporter, the operator and the CRD read.

A backend's row says which precisions it builds (and which it builds as another),
which compute capabilities it builds for ahead of time, the suffix of its artifact,
its int8 sources and hardware-compatibility levels, and which of its manifest's record
keys are its own (the status map `targets[].backendStatus` holds them). The exporter's backend facts
(`bodypose_exporter/engines/<backend>/facts.py`) carry their row; the operator's
backend table (`bodypose_operator/api/backends.py`) carries it too, and the CRD's
enum and admission rules are made from that table. A plug-in backend brings its own
row (`BackendSupport`) to both registries; the built-in three are here.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Every precision the resource can ask for (`spec.precision`).
PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class BuiltAs:
    """A precision a backend takes but builds as another, and why (said in the status)."""

    asked: str
    built: str
    why: str


@dataclass(frozen=True)
class BackendSupport:
    """What one backend supports, as both halves must agree on it."""

    name: str  # the spec's `targets[].backend` and `bpnet build --engine_backend`
    precisions: tuple[str, ...]
    #: The suffixes its artifact's file takes, the default first.
    artifact_suffixes: tuple[str, ...]
    #: The int8 sources it builds from: calibration-cache | tensorfile | qdq.
    int8_sources: tuple[str, ...] = ()
    #: Its hardware-compatibility levels ("none": the artifact runs on the GPU it was built on).
    hardware_compatibility_levels: tuple[str, ...] = ("none",)
    #: Precisions it takes but builds as another.
    built_as: tuple[BuiltAs, ...] = ()
    #: The GPU compute capabilities it builds for ahead of time; empty: it builds for the
    #: device it runs on (or for none).
    compute_capabilities: tuple[str, ...] = ()
    #: The keys of its manifest's compatibility record (and hardware section) that are its
    #: own: the operator copies them, keyed as the manifest names them, into the target's
    #: status map `backendStatus` (no CRD field of their own).
    status_keys: tuple[str, ...] = ()

    @property
    def artifact_suffix(self) -> str:
        """The default suffix: the build writes `bpnet_model.H.W.P<suffix>`."""
        return self.artifact_suffixes[0]

    def built_precision(self, asked: str) -> tuple[str, str | None]:
        """The precision an artifact asked for as `asked` computes in, and why it differs
        (None when it does not)."""
        for row in self.built_as:
            if row.asked == asked:
                return row.built, row.why
        return asked, None


#: Why an fp16 ONNX Runtime artifact is the FP32 graph. ONNX Runtime's CPU provider runs an
#: FP16 graph by casting around each node it has no FP16 kernel for and computing it in FP32
#: (a maintainer: https://github.com/microsoft/onnxruntime/issues/11831), which costs up to
#: twice FP32's latency on x86 (https://github.com/microsoft/onnxruntime/issues/16778).
#: Checked with ONNX Runtime 1.32 on x86: the export's FP16 model (`convert/fp16.py`) opened
#: on the CPU provider gets a Cast around every Conv and ConvTranspose.
FP16_AS_FP32 = (
    "ONNX Runtime's CPU provider has no FP16 convolution kernels (it would cast an FP16 "
    "graph back to FP32 around every convolution): the artifact is the FP32 graph"
)

TENSORRT = BackendSupport(
    name="tensorrt",
    precisions=PRECISIONS,
    artifact_suffixes=(".engine", ".plan"),
    int8_sources=("qdq", "calibration-cache", "tensorfile"),
    # TensorRT's HardwareCompatibilityLevel NONE and AMPERE_PLUS.
    hardware_compatibility_levels=("none", "ampere+"),
)
ONNXRUNTIME = BackendSupport(
    name="onnxruntime",
    precisions=PRECISIONS,  # fp16 builds the FP32 graph and says so
    # An ONNX model: a `.engine` file would be tried as a plan.
    artifact_suffixes=(".onnx",),
    int8_sources=("calibration-cache", "qdq"),
    built_as=(BuiltAs("fp16", "fp32", FP16_AS_FP32),),
)
TENSORRT_RTX = BackendSupport(
    name="tensorrt-rtx",
    # Its INT8 quantizes GEMM weights only, not convolution activations.
    precisions=("fp32", "fp16"),
    artifact_suffixes=(".engine",),
    # TensorRT-RTX 1.7's list (bodypose_exporter/engines/trt_rtx/hardware.py says where
    # it is written); not Hopper (9.0).
    compute_capabilities=("7.5", "8.0", "8.6", "8.9", "12.0", "12.1"),
    # Its compatibility record (`engines/trt_rtx/backend.py` writes it).
    status_keys=("computeCapabilities", "tensorrtRtxVersion"),
)

#: The built-in backends, the default first.
BUILT_IN: tuple[BackendSupport, ...] = (TENSORRT, ONNXRUNTIME, TENSORRT_RTX)
