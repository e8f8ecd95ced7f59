"""What the spec, the status and the admission rules share: the model base and field types.

A module of its own so that the admission rules (`api.admission`) can name the
spec's field types without importing the spec models, which import the rules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from bodypose_operator.api.backends import BACKENDS

S3_URI_PATTERN = r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

Precision = Literal["fp32", "fp16", "int8"]

if TYPE_CHECKING:
    BackendName = str
else:
    # The table's names as a Literal: the CRD's enum, and pydantic's own "Input should
    # be ..." message, exactly as a Literal written out by hand gives them.
    BackendName = Literal[tuple(BACKENDS)]


def and_list(names: list[str]) -> str:
    """`a and b`: names as descriptions and admission messages list them."""
    return " and ".join(names)


class ApiModel(BaseModel):
    """Base: camelCase on the wire, unknown fields refused (as a structural schema prunes)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
