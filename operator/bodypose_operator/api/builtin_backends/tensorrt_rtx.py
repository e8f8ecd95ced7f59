"""TensorRT-RTX's operator part: its own words for the compute capabilities it leaves out.

It builds ahead of time for the capabilities its contract row lists
(`bodypose_contract/backends.py`); the generic admission rule refuses the others
(`api/admission.py`, `capability_rules`) and adds this part's reason, so a user asking
for a Hopper GPU learns why and what builds for it instead.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TensorRTRtx:
    """The operator part of the TensorRT-RTX backend."""

    def unsupported_capabilities_note(self) -> str:
        return "9.0 is Hopper, where its engines do not run: build those with tensorrt"
