"""The build backends a target can name, and every fact about each that the operator acts on.

One row per backend. The exporter has its own registry of backends (how each
builds and runs an engine, `bodypose_exporter/engines/`); this table holds
only what the operator needs to validate a target and to make its build Job:
the image the Job runs, its default resources, the suffix of the file it
writes, the target fields it accepts, what else enters its pool identity, the
precisions it builds, and its operator part (`api/builtin_backends/`, one module a
backend): the optional interfaces of `api/capabilities.py` it implements, which give
the build arguments only that backend takes and its own words in admission. What a
backend supports (its name, precisions, artifact suffix, compute capabilities) is
its row of the contract both images install (`bodypose_contract/backends.py`), the
one list the exporter reads too; `Backend.of` copies it into the operator's row.
The CRD's `backend` enum, the admission rules (`api/admission.py`), the Job
builders (`builders/jobs.py`, `builders/naming.py`) and `settings.py` read
these rows; nothing else in the operator compares a backend's name, so adding
a backend is one row here (and its image, if it needs a new one), or a plug-in
module that `register`s its row, named in `BODYPOSE_BACKEND_PLUGINS`.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bodypose_contract.backends import ONNXRUNTIME, TENSORRT, TENSORRT_RTX, BackendSupport
from bodypose_operator.api.builtin_backends.onnxruntime import OnnxRuntime
from bodypose_operator.api.builtin_backends.tensorrt import TensorRT
from bodypose_operator.api.builtin_backends.tensorrt_rtx import TensorRTRtx
from bodypose_operator.api.capabilities import Int8ByCpuClass


class BuildImage(StrEnum):
    """Which exporter image a backend's build Job runs (`Settings.build_image` names it)."""

    GPU = "gpu"  # the GPU exporter image, on NVIDIA's TensorRT container
    CPU = "cpu"  # the CPU exporter image, which the export Jobs run too


@dataclass(frozen=True)
class TargetOption:
    """A target field only some backends accept, passed to their builds as one argument.

    Every backend accepts `unset` (the field's default), so a resource that does not
    use the option is valid whatever its backend; another value on a backend whose row
    does not list the field is refused at admission (a CEL rule) and again by pydantic.
    """

    field: str  # the Target field, as the spec spells it
    unset: str  # its default ("" for a list field: the empty list)
    flag: str  # the `bpnet-build` argument that carries it
    refused: str  # how the refusal names the field and the values others refuse
    listed: bool = False  # a list field, passed comma-separated
    #: Its value when the target leaves it unset, read from the pool's nodeSelector (the
    #: build then gets that); None: an unset option is passed as it is.
    from_pool: Callable[[Mapping[str, str]], Any] | None = None

    def is_set(self, value: Any) -> bool:
        return bool(value) if self.listed else value != self.unset

    def argument(self, value: Any) -> str:
        return ",".join(value) if self.listed else str(value)


HARDWARE_COMPATIBILITY = TargetOption(
    field="hardwareCompatibility",
    unset="none",
    flag="--hardware_compatibility",
    refused="hardwareCompatibility ampere+",
)
#: GPU feature discovery's labels of a node's GPU compute capability.
COMPUTE_MAJOR_LABEL = "nvidia.com/gpu.compute.major"
COMPUTE_MINOR_LABEL = "nvidia.com/gpu.compute.minor"


def pool_capability(node_selector: Mapping[str, str]) -> list[str]:
    """The pool's own compute capability, as GPU feature discovery labels its nodes
    (admission made sure a target that relies on it names both labels)."""
    return [f"{node_selector[COMPUTE_MAJOR_LABEL]}.{node_selector[COMPUTE_MINOR_LABEL]}"]


COMPUTE_CAPABILITIES = TargetOption(
    field="computeCapabilities",
    unset="",
    flag="--compute_capabilities",
    refused="computeCapabilities",
    listed=True,
    from_pool=pool_capability,
)
#: The target fields that only some backends accept.
TARGET_OPTIONS: tuple[TargetOption, ...] = (HARDWARE_COMPATIBILITY, COMPUTE_CAPABILITIES)


@dataclass(frozen=True)
class Backend:
    """What the operator knows of one backend."""

    name: str  # the spec's `targets[].backend` and the build's --engine_backend
    summary: str  # what it builds, for `kubectl explain`
    build_image: BuildImage
    #: The build pod's resources when the target names none. A backend timed by the wall
    #: clock names a CPU request equal to its limit (the figure is of that share of the
    #: node), which is also the CPU of a target whose resources name none.
    default_resources: Mapping[str, Mapping[str, str]]
    #: The artifact's file suffix: the build stage writes `bpnet_model.H.W.P<suffix>`.
    artifact_suffix: str
    precisions: tuple[str, ...]
    #: The TARGET_OPTIONS fields it accepts; each is passed to its builds.
    options: frozenset[str] = field(default_factory=frozenset)
    #: Its artifacts depend on the library version in the build image (a TensorRT
    #: engine loads only in the TensorRT that built it), so the image is part of what
    #: makes two targets' artifacts interchangeable (`builders.naming.target_identity`).
    #: A fact of its artifact, not something the operator does for it: it stays a field.
    image_in_identity: bool = False
    #: It builds ahead of time for named compute capabilities (`computeCapabilities`, else
    #: the nodeSelector's GPU feature discovery labels), only these.
    compute_capabilities: tuple[str, ...] = ()
    #: Its operator part: how the operator treats it beyond these facts, by the optional
    #: interfaces of `api/capabilities.py` the part implements (the arguments its build
    #: Job takes, its words in admission's refusals). A part implementing none: `object()`.
    part: object = field(default_factory=object)
    #: The manifest record keys that are its own (`BackendSupport.status_keys`): the
    #: target's status carries them in its `backendStatus` map.
    status_keys: tuple[str, ...] = ()

    @property
    def int8_by_cpu_class(self) -> bool:
        """Its int8 artifacts are built for the pool's CPU class (`Int8ByCpuClass`): the
        controller reads the class for its targets only."""
        return isinstance(self.part, Int8ByCpuClass)

    @property
    def cpu(self) -> str | None:
        """The default CPU request and limit, or None: it names none."""
        cpu = self.default_resources.get("limits", {}).get("cpu")
        return None if cpu is None else str(cpu)

    @classmethod
    def of(cls, support: BackendSupport, **operator_facts: Any) -> Backend:
        """The row of a backend whose support is the contract's `support`; the rest
        (`operator_facts`) is what only the operator acts on."""
        return cls(
            name=support.name,
            artifact_suffix=support.artifact_suffix,
            precisions=support.precisions,
            compute_capabilities=support.compute_capabilities,
            status_keys=support.status_keys,
            **operator_facts,
        )

    def resources(self) -> dict[str, Any]:
        """The default resources, a copy the caller may put in a Job manifest."""
        return {kind: dict(amounts) for kind, amounts in self.default_resources.items()}


_ROWS: tuple[Backend, ...] = (
    Backend.of(
        TENSORRT,
        summary="a TensorRT engine built on the pool's GPU",
        build_image=BuildImage.GPU,
        # No CPU: its figures are CUDA-event times of the GPU's work, and a Kueue
        # ClusterQueue covering only nvidia.com/gpu must still admit its Jobs.
        default_resources={"limits": {"nvidia.com/gpu": "1"}},
        options=frozenset({"hardwareCompatibility"}),
        image_in_identity=True,
        part=TensorRT(),
    ),
    Backend.of(
        ONNXRUNTIME,
        summary="an ONNX Runtime-optimized ONNX model (CPU pools, demos)",
        build_image=BuildImage.CPU,
        default_resources={"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "1"}},
        part=OnnxRuntime(),
    ),
    Backend.of(
        TENSORRT_RTX,  # fp32 and fp16; the compute capabilities it builds for
        summary="a TensorRT-RTX engine built ahead of time for the pool's GPUs, on any node "
        "(no GPU needed; fp32 and fp16)",
        build_image=BuildImage.CPU,
        default_resources={"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "1"}},
        options=frozenset({"computeCapabilities"}),
        image_in_identity=True,  # the engine loads only in its TensorRT-RTX version
        part=TensorRTRtx(),
    ),
)

#: Every backend, by name: the built-in rows, then the plug-ins (`register`).
BACKENDS: dict[str, Backend] = {row.name: row for row in _ROWS}
#: A target that names no backend builds with this one.
DEFAULT_BACKEND = _ROWS[0].name
#: The modules of plug-in backends, comma-separated (the exporter's registry reads it too:
#: `bodypose_exporter/engines/registry.py`).
PLUGINS_ENV = "BODYPOSE_BACKEND_PLUGINS"


def register(row: Backend) -> None:
    """Add a backend's row. Before the spec models are first imported: the CRD's enum and
    the admission rules are made from the table then (`api/base.py`, `api/admission.py`).
    A name registered twice is refused: two rows would answer to it."""
    if row.name in BACKENDS:
        raise ValueError(f"a backend named {row.name!r} is already registered")
    BACKENDS[row.name] = row


def register_plugins(modules: str | None = None) -> None:
    """Register the plug-ins `modules` names (default: `$BODYPOSE_BACKEND_PLUGINS`): each
    module's `register_operator(register)` adds its row (and imports no exporter)."""
    names = os.environ.get(PLUGINS_ENV, "") if modules is None else modules
    for name in (n.strip() for n in names.split(",")):
        if name:
            importlib.import_module(name).register_operator(register)


register_plugins()


def accepting(option: TargetOption, backends: Mapping[str, Backend] = BACKENDS) -> list[str]:
    """The backends that accept `option`, in table order."""
    return [name for name, row in backends.items() if option.field in row.options]


def describe_resources(backends: Mapping[str, Backend] = BACKENDS) -> str:
    """`tensorrt: limits nvidia.com/gpu=1; ...`: the defaults, for `kubectl explain`."""
    return "; ".join(
        f"{name}: "
        + ", ".join(
            f"{kind} " + ", ".join(f"{k}={v}" for k, v in amounts.items())
            for kind, amounts in row.default_resources.items()
        )
        for name, row in backends.items()
    )
