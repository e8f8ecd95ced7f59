"""What some backends' operator parts do and others' do not: optional interfaces.

A backend's row (`api/backends.py`) holds its facts and its `part`, the object that
says how the operator treats that backend beyond the facts. A part implements the
interfaces here it has a use for, and nothing else: the Job builder and the admission
rules ask `isinstance(row.part, Int8Routes)` and take the arguments or the words from
the part, rather than reading a boolean in the row and writing the backend's flags
themselves. The exporter's half is built the same way
(`bodypose_exporter/engines/capabilities.py`); followed: kubernetes-sigs/kueue
`pkg/controller/jobframework` (`interface.go`: one required `GenericJob`, optional
interfaces such as `JobWithSkip` that the reconciler type-asserts).

`runtime_checkable` checks only that the members exist, so each member has a name no
part would carry for another reason. What the operator decides stays with it (when the
argument applies, and the values only it knows: the pool's labels, the S3 layout);
what the backend's build takes (the flag and how the value is spelled) is the part's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from bodypose_operator.api.rules import Rule

if TYPE_CHECKING:
    # Types only: the spec models are made from the backend table, above it.
    from bodypose_operator.api.spec import BodyPoseExportSpec, Target


@runtime_checkable
class TakesArguments(Protocol):
    """Its build takes arguments of its own, made from the resource and the target (after
    the generic ones: the target options its row accepts, `TARGET_OPTIONS`), such as the
    values of the `backendOptions` keys it declares (`TakesBackendOptions`)."""

    def build_arguments(self, spec: BodyPoseExportSpec, target: Target) -> list[str]:
        """The `bpnet-build` arguments of its own for `target`'s build Job."""
        ...


@runtime_checkable
class ChecksGpuProduct(Protocol):
    """Its build stops before any work on a GPU other than the one the pool advertises
    (an engine belongs to its GPU): the product the nodeSelector names."""

    def gpu_product_arguments(self, product: str) -> list[str]:
        """The arguments that tell its build which GPU `product` to expect."""
        ...


@runtime_checkable
class Int8Routes(Protocol):
    """It has more than one way to build int8, and takes `engine.int8Route`."""

    def int8_route_arguments(self, route: str) -> list[str]:
        """The arguments that choose `route` (the spec's spelling; never `auto`, which
        is its build's own choice and passes nothing)."""
        ...


@runtime_checkable
class SharesTimingCache(Protocol):
    """Its builds time tactics on the GPU and keep what they measured: one timing cache
    per GPU model and library version, shared by every build under the output prefix
    (the build names the file by the device it finds, which only its pod can read)."""

    def timing_cache_arguments(self, directory: str) -> list[str]:
        """The arguments that point its build at the shared caches' `directory`."""
        ...


@runtime_checkable
class Int8ByCpuClass(Protocol):
    """Its int8 artifacts differ by the CPU's int8 kernels (README, "CPU int8"): the
    operator reads the pool's class from Node Feature Discovery's labels
    (`controller/cpu_class.py`), puts it in the target's identity and tells the build."""

    def int8_class_arguments(self, int8_class: str) -> list[str]:
        """The arguments that tell its build the CPU class it builds int8 for."""
        ...


@runtime_checkable
class ExplainsUnsupportedCapabilities(Protocol):
    """It builds for named compute capabilities (its contract row lists them) and has
    words of its own for the ones it leaves out, added to the admission rule's refusal."""

    def unsupported_capabilities_note(self) -> str:
        """Why the capabilities it does not list are left out, and what to use instead."""
        ...


#: The target's map of the options a backend declares (`TakesBackendOptions`).
BACKEND_OPTIONS_FIELD = "backendOptions"


@dataclass(frozen=True)
class BackendOption:
    """One key a backend takes in a target's `backendOptions` map (a string value).

    `rules` are admission rules of the target node (CEL's `self` is the target): the
    operator applies each only to a target of that backend which sets this key, so its
    CEL may read `self.backendOptions['<key>']` as present, and its check
    `target.backendOptions[key]` (`api/admission.py`, `backend_option_rules`)."""

    key: str
    description: str  # what it does, for `kubectl explain`
    rules: Sequence[Rule[Target]] = field(default_factory=tuple)


@runtime_checkable
class TakesBackendOptions(Protocol):
    """It takes options of its own in the target's `backendOptions` map: the keys it
    declares here, with their admission rules. The CRD's description of the map and its
    rules on the target node are made from them (a key no backend of the target declares
    is refused); its build takes the values through its part (`TakesArguments`)."""

    def backend_options(self) -> Sequence[BackendOption]:
        """The keys it takes, in the order its description lists them."""
        ...
