"""An admission rule: one object holding its CEL and its Python check (`Rule`).

A module of its own, importing nothing of the operator, so that a backend's part (a
built-in one in `api/builtin_backends/`, or a plug-in's) can write the rules of the
options it declares (`capabilities.BackendOption`) without importing the backend table
or the spec models, which are made from it. `api/admission.py` holds the rules
themselves and places them on their schema nodes.

CEL reference: https://kubernetes.io/docs/reference/using-api/cel/
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

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
