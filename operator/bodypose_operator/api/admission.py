"""The admission rules of BodyPoseExport, each written once: its CEL and its Python check.

A `Rule` is one `x-kubernetes-validations` entry (the API server refuses an
object breaking it, with its message) and the same test in Python, which the
spec models run (`api.spec`): an object stored before the CRD had a rule, or
one that reaches the operator another way, is refused by the operator with the
very sentence admission gives. The two halves sit side by side in one object, so
neither can change without the other being in view, and each model asks its own
rules (`validations`, `first_problem`) rather than looking a message up by its
place in a list.

Rules are placed on the schema node they read (CEL's `self`): the spec's on the
spec (`SPEC_RULES`), a queue name's on its field (`queue_name_rule`).
Most of the spec's are made from the backend table (`api/backends.py`): which
targets may set an option, which precisions and compute capabilities a backend
builds.

CEL reference: https://kubernetes.io/docs/reference/using-api/cel/
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar, get_args

from bodypose_operator.api.backends import (
    BACKENDS,
    COMPUTE_MAJOR_LABEL,
    COMPUTE_MINOR_LABEL,
    DEFAULT_BACKEND,
    TARGET_OPTIONS,
    Backend,
    TargetOption,
    accepting,
)
from bodypose_operator.api.base import Precision, and_list
from bodypose_operator.api.capabilities import ExplainsUnsupportedCapabilities
from bodypose_operator.api.queues import QUEUE_NAME_MAX, QUEUE_NAME_PATTERN

if TYPE_CHECKING:
    from bodypose_operator.api.spec import BodyPoseExportSpec

Node = TypeVar("Node")


@dataclass(frozen=True)
class Rule(Generic[Node]):
    """One admission rule of a schema node: CEL for the API server, Python for the operator.

    `holds` answers what `cel` answers, for the node's value as the operator's models
    parse it (defaults filled in, where CEL sees a field unset)."""

    cel: str
    message: str
    holds: Callable[[Node], bool]

    def validation(self) -> dict[str, str]:
        """Its `x-kubernetes-validations` entry."""
        return {"rule": self.cel, "message": self.message}


def validations(rules: Iterable[Rule[Any]]) -> list[dict[str, str]]:
    """A schema node's `x-kubernetes-validations`, in the rules' order."""
    return [rule.validation() for rule in rules]


def first_problem(rules: Iterable[Rule[Node]], value: Node) -> str | None:
    """The message of the first rule `value` breaks (admission's order), or None."""
    return next((rule.message for rule in rules if not rule.holds(value)), None)


# ----- a queue name (on each queue-name field) ----------------------------------------


def queue_name_rule(field: str) -> Rule[str]:
    """A Kueue LocalQueue name (api/queues.py says why these characters). In the CRD the
    length is the field's maxLength; the Python check holds it too, with the same
    sentence, since the chart's default (settings.py) has no schema to do it."""
    return Rule(
        f"self.matches('{QUEUE_NAME_PATTERN}')",
        f"{field} must name a Kueue LocalQueue: lowercase letters, digits, '-' and '.', "
        f"starting and ending with a letter or digit, at most {QUEUE_NAME_MAX} characters",
        lambda value: (
            len(value) <= QUEUE_NAME_MAX and re.fullmatch(QUEUE_NAME_PATTERN, value) is not None
        ),
    )


def queue_name_problem(value: str, field: str) -> str | None:
    """Why `value` cannot be a queue name (the sentence admission gives), or None."""
    return first_problem([queue_name_rule(field)], value)


def queue_name_schema(field: str) -> dict[str, Any]:
    """The CRD schema's share of a queue-name field: its length and its CEL rule."""
    return {
        "maxLength": QUEUE_NAME_MAX,
        "x-kubernetes-validations": validations([queue_name_rule(field)]),
    }


# ----- the spec (on the spec node) -----------------------------------------------------

#: A rule of the spec node.
Spec: TypeAlias = Rule["BodyPoseExportSpec"]

MULTIPLE_OF_8: Spec = Rule(
    "self.input.height % 8 == 0 && self.input.width % 8 == 0",
    "input.height and input.width must be multiples of 8 (preferably of 16, 32 or 64)",
    lambda spec: spec.input.height % 8 == 0 and spec.input.width % 8 == 0,
)
INT8_NEEDS_CALIBRATION: Spec = Rule(
    "self.precision != 'int8' || (has(self.calibration) && (has(self.calibration.imagesUri) "
    "|| has(self.calibration.tensorfileUri) || has(self.calibration.cacheUri)))",
    "precision int8 needs a calibration source: calibration.imagesUri, tensorfileUri or cacheUri",
    lambda spec: (
        spec.precision != "int8"
        or (
            spec.calibration is not None
            and bool(
                spec.calibration.imagesUri
                or spec.calibration.tensorfileUri
                or spec.calibration.cacheUri
            )
        )
    ),
)
UNIQUE_TARGET_NAMES: Spec = Rule(
    "self.targets.all(t, self.targets.exists_one(u, u.name == t.name))",
    "target names must be unique",
    lambda spec: len({t.name for t in spec.targets}) == len(spec.targets),
)
#: The most images one calibration may read (batches x batchSize).
CALIBRATION_IMAGES_MAX = 1_000_000
CALIBRATION_BOUNDED: Spec = Rule(
    "!has(self.calibration) "
    f"|| self.calibration.batches * self.calibration.batchSize <= {CALIBRATION_IMAGES_MAX}",
    f"calibration.batches x calibration.batchSize must be at most {CALIBRATION_IMAGES_MAX} images",
    lambda spec: (
        spec.calibration is None
        or spec.calibration.batches * spec.calibration.batchSize <= CALIBRATION_IMAGES_MAX
    ),
)


def _is_backend(names: list[str], default: str = DEFAULT_BACKEND) -> str:
    """CEL: target `t` builds with one of `names` (a target naming none, with the default)."""
    unnamed = ["!has(t.backend)"] if default in names else []
    return " || ".join([*unnamed, *(f"t.backend == '{name}'" for name in names)])


def option_rule(option: TargetOption, backends: Mapping[str, Backend] = BACKENDS) -> Spec:
    """A target may set `option` only with a backend whose row accepts it."""
    names, f = accepting(option, backends), option.field
    unset = f"size(t.{f}) == 0" if option.listed else f"t.{f} == '{option.unset}'"

    def holds(spec: BodyPoseExportSpec) -> bool:
        return all(
            not option.is_set(getattr(t, f)) or f in backends[t.backend].options
            for t in spec.targets
        )

    return Rule(
        f"self.targets.all(t, !has(t.{f}) || {unset} || {_is_backend(names)})",
        f"{option.refused} applies to {and_list(names)} targets only",
        holds,
    )


def pool_capability(node_selector: Mapping[str, str]) -> str | None:
    """`8.9` from a nodeSelector's GPU feature discovery labels, or None without both."""
    if not {COMPUTE_MAJOR_LABEL, COMPUTE_MINOR_LABEL} <= set(node_selector):
        return None
    return f"{node_selector[COMPUTE_MAJOR_LABEL]}.{node_selector[COMPUTE_MINOR_LABEL]}"


def _built_for(spec: BodyPoseExportSpec, backend: Backend) -> list[list[str]]:
    """For each of `backend`'s targets, the capabilities it is built for: its own list,
    else its pool's by the labels, else none."""
    found = []
    for t in spec.targets:
        if t.backend == backend.name:
            pool = pool_capability(t.nodeSelector)
            found.append(list(t.computeCapabilities) or ([pool] if pool is not None else []))
    return found


def _unsupported_note(backend: Backend) -> str:
    """` (why)`: the backend's own words for the capabilities it leaves out, if it has any."""
    part = backend.part
    if isinstance(part, ExplainsUnsupportedCapabilities):
        return f" ({part.unsupported_capabilities_note()})"
    return ""


def capability_rules(backend: Backend) -> list[Spec]:
    """A backend that builds for named compute capabilities: only those it has, and some
    named (on the target, or by the pool's GPU feature discovery labels). The labels name
    what the build is for when the target names none (`builders.jobs`), so they are held
    to the same list, with the same message: a pool of a capability it leaves out is
    refused by its labels as by `computeCapabilities`, in the backend's own words
    (`ExplainsUnsupportedCapabilities`)."""
    supported = backend.compute_capabilities
    listed = ", ".join(f"'{c}'" for c in supported)
    mine = _is_backend([backend.name], default="")
    labels = (f"has(t.nodeSelector) && '{COMPUTE_MAJOR_LABEL}' in t.nodeSelector && "
              f"'{COMPUTE_MINOR_LABEL}' in t.nodeSelector")  # fmt: skip
    named = "has(t.computeCapabilities) && size(t.computeCapabilities) > 0"
    pool = (f"t.nodeSelector['{COMPUTE_MAJOR_LABEL}'] + '.' + "
            f"t.nodeSelector['{COMPUTE_MINOR_LABEL}']")  # fmt: skip
    return [
        Rule(
            f"self.targets.all(t, !({mine}) || ({named} ? "
            f"t.computeCapabilities.all(c, c in [{listed}]) : "
            f"(!({labels}) || ({pool}) in [{listed}])))",
            f"computeCapabilities: {backend.name} builds for {', '.join(supported)} only"
            + _unsupported_note(backend),
            lambda spec: all(c in supported for built in _built_for(spec, backend) for c in built),
        ),
        Rule(
            f"self.targets.all(t, !({mine}) || ({named}) || ({labels}))",
            f"{backend.name} targets name the GPUs to build for: computeCapabilities, or a "
            f"nodeSelector with {COMPUTE_MAJOR_LABEL} and {COMPUTE_MINOR_LABEL}",
            lambda spec: all(_built_for(spec, backend)),
        ),
    ]


def precision_rule(backend: Backend) -> Spec:
    """The resource's precision must be one each of its targets' backends builds."""
    listed = ", ".join(f"'{p}'" for p in backend.precisions)
    return Rule(
        f"self.targets.all(t, !({_is_backend([backend.name])}) || self.precision in [{listed}])",
        f"{backend.name} targets build {and_list(list(backend.precisions))} only",
        lambda spec: (
            spec.precision in backend.precisions
            or all(t.backend != backend.name for t in spec.targets)
        ),
    )


#: One rule per target option (by field), one per backend that does not build every
#: precision (by name): a backend that builds all three needs none; and two per backend
#: that builds for named compute capabilities (by name).
OPTION_RULES = {option.field: option_rule(option) for option in TARGET_OPTIONS}
PRECISION_RULES = {
    name: precision_rule(row)
    for name, row in BACKENDS.items()
    if set(get_args(Precision)) - set(row.precisions)
}
CAPABILITY_RULES = {
    name: capability_rules(row) for name, row in BACKENDS.items() if row.compute_capabilities
}

#: The spec node's rules, in the CRD's order (the order the API server reports them in,
#: and the operator finds the first broken one in).
SPEC_RULES: list[Spec] = [
    MULTIPLE_OF_8,
    INT8_NEEDS_CALIBRATION,
    UNIQUE_TARGET_NAMES,
    CALIBRATION_BOUNDED,
    *OPTION_RULES.values(),
    *PRECISION_RULES.values(),
    *(rule for rules in CAPABILITY_RULES.values() for rule in rules),
]
