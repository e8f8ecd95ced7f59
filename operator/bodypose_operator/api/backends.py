"""The build backends a target can name, and every fact about each that the operator acts on.

One row per backend (`api/backend_row.py`), made in the backend's own module
(`api/builtin_backends/<backend>.py`, or a plug-in's package). The exporter has
its own registry of backends (how each builds and runs an engine,
`bodypose_exporter/engines/`); a row holds only what the operator needs to
validate a target and to make its build Job: the image the Job runs, its default
resources, the suffix of the file it writes, the target fields it accepts, what
else enters its pool identity, the precisions it builds, and its operator part:
the optional interfaces of `api/capabilities.py` it implements, which give the
build arguments only that backend takes and its own words in admission. What a
backend supports (its name, precisions, artifact suffix, compute capabilities) is
its row of the contract both images install (`bodypose_contract/backends.py`), the
one list the exporter reads too; `Backend.of` copies it into the operator's row.
The CRD's `backend` enum, the admission rules (`api/admission.py`), the Job
builders (`builders/jobs.py`, `builders/naming.py`) and `settings.py` read
these rows; nothing else in the operator compares a backend's name, so adding
a backend is one module and one entry here (and its image, if it needs a new one),
or a plug-in module that `register`s its row, named in `BODYPOSE_BACKEND_PLUGINS`.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bodypose_operator.api.backend_row import Backend as Backend
from bodypose_operator.api.backend_row import BuildImage as BuildImage
from bodypose_operator.api.builtin_backends import onnxruntime, tensorrt, tensorrt_rtx


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


_ROWS: tuple[Backend, ...] = (tensorrt.ROW, onnxruntime.ROW, tensorrt_rtx.ROW)

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


def describe_status_keys(backends: Mapping[str, Backend] = BACKENDS) -> str:
    """`tensorrt-rtx: computeCapabilities, tensorrtRtxVersion`: the keys each backend
    records in a target's `backendStatus`, for `kubectl explain`."""
    owning = [
        f"{name}: {', '.join(row.status_keys)}" for name, row in backends.items() if row.status_keys
    ]
    return "; ".join(owning) if owning else "none of the backends offered here records any"
