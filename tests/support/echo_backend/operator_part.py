"""The echo backend's operator part: one Job argument of its own.

Through `bodypose_operator.api.capabilities.TakesArguments` (its row's `part`, added by
`register_operator`), its build Jobs carry `--echo_label <target name>`, which its
exporter half takes (`args.py`) and records. Imports no exporter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tests.support.echo_backend import LABEL_FLAG

if TYPE_CHECKING:
    from bodypose_operator.api.spec import BodyPoseExportSpec, Target


@dataclass(frozen=True)
class EchoPart:
    """What the operator asks of the echo backend beyond its row's facts."""

    def build_arguments(self, spec: BodyPoseExportSpec, target: Target) -> list[str]:
        return [LABEL_FLAG, target.name]
