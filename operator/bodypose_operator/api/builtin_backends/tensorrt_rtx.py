"""TensorRT-RTX's operator part: its own words for the compute capabilities it leaves out.

It builds ahead of time for the capabilities its contract row lists
(`bodypose_contract/backends.py`); the generic admission rule refuses the others
(`api/admission.py`, `capability_rules`) and adds this part's reason, so a user asking
for a Hopper GPU learns why and what builds for it instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from bodypose_contract.backends import TENSORRT_RTX
from bodypose_operator.api.backend_row import Backend, BuildImage


@dataclass(frozen=True)
class TensorRTRtx:
    """The operator part of the TensorRT-RTX backend."""

    def unsupported_capabilities_note(self) -> str:
        return "9.0 is Hopper, where its engines do not run: build those with tensorrt"


#: Its row of the backend table.
ROW = Backend.of(
    TENSORRT_RTX,  # fp32 and fp16; the compute capabilities it builds for
    summary="a TensorRT-RTX engine built ahead of time for the pool's GPUs, on any node "
    "(no GPU needed; fp32 and fp16)",
    build_image=BuildImage.CPU,
    default_resources={"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "1"}},
    options=frozenset({"computeCapabilities"}),
    image_in_identity=True,  # the engine loads only in its TensorRT-RTX version
    part=TensorRTRtx(),
)
