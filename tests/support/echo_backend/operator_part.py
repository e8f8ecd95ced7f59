"""The echo backend's operator part: one option and one Job argument of its own.

It declares one key of the target's `backendOptions` map
(`bodypose_operator.api.capabilities.TakesBackendOptions`), `label`, with an admission
rule of its own (CEL on the target node and its Python check, one `Rule`); the CRD
generated with this plug-in offers the key and carries the rule, and refuses any other
key for an echo target. Through `TakesArguments` (its row's `part`, added by
`register_operator`) its build Jobs carry `--echo_label <label>` (default: the target's
name), which its exporter half takes (`args.py`) and records. Imports no exporter.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bodypose_operator.api.capabilities import BackendOption
from bodypose_operator.api.rules import Rule
from tests.support.echo_backend import LABEL_FLAG

if TYPE_CHECKING:
    from bodypose_operator.api.spec import BodyPoseExportSpec, Target

#: Its key in `backendOptions`, and what a label may be: a DNS label, as a target's name.
LABEL_KEY = "label"
LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
LABEL_MAX = 40
LABEL_IS_A_NAME: Rule[Target] = Rule(
    f"self.backendOptions['{LABEL_KEY}'].matches('{LABEL_PATTERN}') "
    f"&& size(self.backendOptions['{LABEL_KEY}']) <= {LABEL_MAX}",
    f"backendOptions.{LABEL_KEY}: the echo backend's label is lowercase letters, digits "
    f"and '-', starting and ending with a letter or digit, at most {LABEL_MAX} characters",
    lambda target: (
        len(label := target.backendOptions[LABEL_KEY]) <= LABEL_MAX
        and re.fullmatch(LABEL_PATTERN, label) is not None
    ),
)


@dataclass(frozen=True)
class EchoPart:
    """What the operator asks of the echo backend beyond its row's facts."""

    def backend_options(self) -> Sequence[BackendOption]:
        return (
            BackendOption(
                LABEL_KEY,
                "the label its build records; default: the target's name",
                rules=(LABEL_IS_A_NAME,),
            ),
        )

    def build_arguments(self, spec: BodyPoseExportSpec, target: Target) -> list[str]:
        return [LABEL_FLAG, target.backendOptions.get(LABEL_KEY, target.name)]
