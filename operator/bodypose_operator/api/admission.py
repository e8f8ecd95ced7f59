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
spec (`SPEC_RULES`), a target's on each target (`TARGET_RULES`), a queue name's on
its field (`queue_name_rule`).
Most are made from the backend table (`api/backends.py`): which targets may set an
option, which precisions and compute capabilities a backend builds, which keys of
`backendOptions` it takes and the rules its part gives for them (a plug-in's too).

CEL reference: https://kubernetes.io/docs/reference/using-api/cel/
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeAlias, get_args

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
from bodypose_operator.api.capabilities import (
    BACKEND_OPTIONS_FIELD,
    BackendOption,
    ExplainsUnsupportedCapabilities,
    TakesBackendOptions,
)
from bodypose_operator.api.queues import QUEUE_NAME_MAX, QUEUE_NAME_PATTERN
from bodypose_operator.api.rules import Rule as Rule
from bodypose_operator.api.rules import first_problem as first_problem
from bodypose_operator.api.rules import validations as validations

if TYPE_CHECKING:
    from bodypose_operator.api.spec import BodyPoseExportSpec, Target

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


# ----- a target (on each target) ------------------------------------------------------

#: A rule of a target node.
Targeted: TypeAlias = Rule["Target"]


def _is_this_backend(name: str) -> str:
    """CEL on a target node: it builds with backend `name`."""
    unnamed = "!has(self.backend) || " if name == DEFAULT_BACKEND else ""
    return f"{unnamed}self.backend == '{name}'"


def declared_options(backend: Backend) -> list[BackendOption]:
    """The `backendOptions` keys `backend`'s part declares (`TakesBackendOptions`)."""
    part = backend.part
    return list(part.backend_options()) if isinstance(part, TakesBackendOptions) else []


def _own_fields_note(backend: Backend) -> str:
    """` (its options are the target's fields x)`: where a built-in's options are, so a
    user reaching for the map learns where to look instead."""
    if not backend.options:
        return ""
    return f" (its options are the target's fields {and_list(sorted(backend.options))})"


def known_keys_rule(backend: Backend) -> Targeted:
    """A target of `backend` sets only the `backendOptions` keys it declares (none: none).

    The message names the keys, not the one refused: CEL's `messageExpression` could name
    it, but a map's keys have no order in CEL, so with two unknown keys the API server and
    the operator might name different ones; one sentence both give is worth more."""
    name, f = backend.name, BACKEND_OPTIONS_FIELD
    keys = [option.key for option in declared_options(backend)]
    if keys:
        listed = ", ".join(f"'{key}'" for key in keys)
        cel, words = f"self.{f}.all(k, k in [{listed}])", f"{and_list(keys)} only"
    else:
        cel, words = f"size(self.{f}) == 0", "none" + _own_fields_note(backend)
    return Rule(
        f"!({_is_this_backend(name)}) || !has(self.{f}) || {cel}",
        f"{f}: the {name} backend takes {words}",
        lambda t: t.backend != name or set(t.backendOptions) <= set(keys),
    )


def _option_rule(name: str, option: BackendOption, rule: Targeted) -> Targeted:
    """`rule` of `option`, applied to the targets of backend `name` that set its key."""
    f, key = BACKEND_OPTIONS_FIELD, option.key
    return Rule(
        f"!({_is_this_backend(name)}) || !has(self.{f}) || !('{key}' in self.{f}) || ({rule.cel})",
        rule.message,
        lambda t: t.backend != name or key not in t.backendOptions or rule.holds(t),
    )


def backend_option_rules(backend: Backend) -> list[Targeted]:
    """A backend's rules of the target node: the keys it takes, then each key's own."""
    own = [
        _option_rule(backend.name, option, rule)
        for option in declared_options(backend)
        for rule in option.rules
    ]
    return [known_keys_rule(backend), *own]


#: A target's rules, in the CRD's order: each backend's, in table order.
TARGET_RULES: list[Targeted] = [
    rule for row in BACKENDS.values() for rule in backend_option_rules(row)
]


def describe_backend_options(backends: Mapping[str, Backend] = BACKENDS) -> str:
    """The keys each backend takes, for `kubectl explain` of `backendOptions`."""
    taking = [
        f"{name} takes " + "; ".join(f"{o.key} ({o.description})" for o in options)
        for name, row in backends.items()
        if (options := declared_options(row))
    ]
    return ". ".join(taking) + "." if taking else "No backend offered here takes any."


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
