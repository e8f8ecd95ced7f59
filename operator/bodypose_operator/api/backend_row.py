"""One backend's row: what the operator knows of it (`api/backends.py` holds the table).

Its own module so that each built-in backend's module (`api/builtin_backends/`) and
each plug-in makes its row without importing the table it joins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bodypose_contract.backends import BackendSupport
from bodypose_operator.api.capabilities import Int8ByCpuClass


class BuildImage(StrEnum):
    """Which exporter image a backend's build Job runs (`Settings.build_image` names it)."""

    GPU = "gpu"  # the GPU exporter image, on NVIDIA's TensorRT container
    CPU = "cpu"  # the CPU exporter image, which the export Jobs run too


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
