"""Generate the CustomResourceDefinition from the pydantic models.

`python -m bodypose_operator.api.crd > crds/bodyposeexports.bodypose.dev.yaml`
writes it; a test fails when the committed file differs from what the models
generate, so the schema is never edited by hand in two places.

pydantic emits JSON Schema 2020-12; a CRD needs a *structural* OpenAPI v3.0
schema (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/
custom-resource-definitions/#specifying-a-structural-schema): every node typed,
no `$ref`, no `anyOf` with null, boolean `exclusiveMinimum`. `to_structural`
does exactly those rewrites and nothing else.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from bodypose_operator.api.v1alpha1 import (
    GROUP,
    KIND,
    PLURAL,
    SHORT_NAME,
    SINGULAR,
    VERSION,
    BodyPoseExportSpec,
    BodyPoseExportStatus,
)

_DROP = {"title"}


def to_structural(node: Any, defs: dict[str, Any]) -> Any:
    """Rewrite one pydantic JSON-schema node into structural OpenAPI v3.0."""
    if isinstance(node, list):
        return [to_structural(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "$ref" in node:
        target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
        merged = {**target, **node}  # the field's own description wins over the class docstring
        return to_structural(merged, defs)
    if "anyOf" in node:
        options = [o for o in node.pop("anyOf") if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot make a structural schema of anyOf {options}")
        merged = {**options[0], **node}
        if merged.get("default", 0) is None:
            merged.pop("default")
        return to_structural(merged, defs)
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if "exclusiveMinimum" in node:
        node["minimum"] = node["exclusiveMinimum"]
        node["exclusiveMinimum"] = True
    if "exclusiveMaximum" in node:
        node["maximum"] = node["exclusiveMaximum"]
        node["exclusiveMaximum"] = True
    structural: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP or key == "$defs":
            continue
        if key == "properties":
            structural[key] = {name: to_structural(v, defs) for name, v in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            structural[key] = to_structural(value, defs)
        elif key == "additionalProperties":
            # `extra="forbid"` gives `false`, which structural schemas reject; the
            # API server prunes unknown fields instead.
            continue
        else:
            structural[key] = value
    if "enum" in structural and "type" not in structural:
        structural["type"] = "string"
    return structural


def model_schema(model: type[Any]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    structural: dict[str, Any] = to_structural(raw, raw.get("$defs", {}))
    return structural


PRINTER_COLUMNS = [
    {"name": "Precision", "type": "string", "jsonPath": ".spec.precision"},
    {"name": "Resolution", "type": "string", "jsonPath": ".status.resolution"},
    {
        "name": "Ready",
        "type": "string",
        "jsonPath": ".status.readyTargets",
        "description": "Targets with an engine (verified, or built and not run), of all targets.",
    },
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {
        "name": "AP-Drop",
        "type": "number",
        "jsonPath": ".status.worstApDrop",
        "description": "The largest AP drop (AP points) of any target below the FP32 model.",
        "priority": 1,
    },
    {
        "name": "Latency-ms",
        "type": "number",
        "jsonPath": ".status.slowestLatencyMs",
        "description": "The slowest target's batch-1 median latency, measured on its build node.",
        "priority": 1,
    },
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def build_crd() -> dict[str, Any]:
    schema = {
        "type": "object",
        "description": "BodyPoseExport turns a trained TAO BodyPoseNet model into an .etlt, an "
        "INT8 calibration cache and one engine per target node pool, all in S3.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": model_schema(BodyPoseExportSpec),
            "status": model_schema(BodyPoseExportStatus),
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": [SHORT_NAME],
                "categories": ["all"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def render() -> str:
    header = "# Generated from operator/bodypose_operator/api/v1alpha1.py by\n"
    header += "# `python -m bodypose_operator.api.crd`; do not edit by hand.\n"
    return header + yaml.safe_dump(build_crd(), sort_keys=False, width=100)


if __name__ == "__main__":
    sys.stdout.write(render())
