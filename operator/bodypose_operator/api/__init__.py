"""The BodyPoseExport API types: pydantic models are the single source of the schema."""

from bodypose_operator.api.v1alpha1 import (
    GROUP,
    KIND,
    PLURAL,
    SHORT_NAME,
    VERSION,
    BodyPoseExportSpec,
    BodyPoseExportStatus,
)

__all__ = [
    "GROUP",
    "KIND",
    "PLURAL",
    "SHORT_NAME",
    "VERSION",
    "BodyPoseExportSpec",
    "BodyPoseExportStatus",
]
