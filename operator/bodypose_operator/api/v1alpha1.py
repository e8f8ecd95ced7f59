"""BodyPoseExport, group bodypose.dev, version v1alpha1: the resource's names and types.

The public face of the API: the resource's group, version and names, and its
spec and status models. Each part lives in its own module: the spec models in
`api.spec`, the status models in `api.status`, the admission rules (each one CEL
rule and its Python check) in `api.admission`; `api.crd` makes the CRD of them.
"""

from __future__ import annotations

from typing import Any

from bodypose_operator.api.spec import (
    BodyPoseExportSpec,
    CalibrationSpec,
    EngineSpec,
    EvaluationSpec,
    InputSpec,
    ModelSource,
    OutputSpec,
    Resources,
    SecretKeyRef,
    SecretRef,
    Target,
    Toleration,
    VerificationSpec,
)
from bodypose_operator.api.status import (
    ArtifactRef,
    BodyPoseExportStatus,
    Condition,
    EvaluationStatus,
    Latency,
    LatencyFigures,
    LatencyMeasurement,
    QueueStatus,
    ServingConfigs,
    SharedArtifacts,
    TargetStatus,
)

GROUP = "bodypose.dev"
VERSION = "v1alpha1"
KIND = "BodyPoseExport"
PLURAL = "bodyposeexports"
SINGULAR = "bodyposeexport"
SHORT_NAME = "bpe"


def parse_spec(raw: dict[str, Any]) -> BodyPoseExportSpec:
    return BodyPoseExportSpec.model_validate(raw)


__all__ = [
    "GROUP",
    "KIND",
    "PLURAL",
    "SHORT_NAME",
    "SINGULAR",
    "VERSION",
    "ArtifactRef",
    "BodyPoseExportSpec",
    "BodyPoseExportStatus",
    "CalibrationSpec",
    "Condition",
    "EngineSpec",
    "EvaluationSpec",
    "EvaluationStatus",
    "InputSpec",
    "Latency",
    "LatencyFigures",
    "LatencyMeasurement",
    "ModelSource",
    "OutputSpec",
    "QueueStatus",
    "Resources",
    "SecretKeyRef",
    "SecretRef",
    "ServingConfigs",
    "SharedArtifacts",
    "Target",
    "TargetStatus",
    "Toleration",
    "VerificationSpec",
    "parse_spec",
]
