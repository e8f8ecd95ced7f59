"""What a TensorRT engine runs on: its compatibility record, checked before a build and a reuse.

A serialized TensorRT engine runs only on the GPU architecture (compute
capability) and the exact TensorRT version that built it, unless it was
built hardware-compatible (TensorRT developer guide, "Hardware
Compatibility": `HardwareCompatibilityLevel.AMPERE_PLUS` runs on every
compute capability from 8.0 on, at some speed cost). The complaints in
DeepStream's and Triton's trackers ("expecting compute 6.1 got compute 7.5",
"not compatible with this version of TensorRT") are engines moved across
either. So every engine carries the three facts, in its file name and in the
build's manifest, and the build refuses to start on a GPU other than the one
its pool advertises: the operator passes the pool's `nvidia.com/gpu.product`
label (NVIDIA's GPU feature discovery: the device name with spaces as `-`,
e.g. `NVIDIA-A100-SXM4-40GB`, `Tesla-T4`, and suffixes such as `-SHARED` or
`-MIG-1g.5gb` for shared and partitioned GPUs).

No TensorRT here: the record is built from `engines.trt.hardware.describe()`
by the caller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bodypose_exporter.errors import UserError

#: `--hardware_compatibility` values; TensorRT's HardwareCompatibilityLevel NONE, AMPERE_PLUS.
HARDWARE_COMPATIBILITY = ("none", "ampere+")
#: In file names `+` would read as a space to S3 tools that form-decode keys.
_LEVEL_TAGS = {"none": "", "ampere+": ".ampere_plus"}


class GpuMismatchError(UserError):
    reason = "GpuMismatch"


@dataclass(frozen=True)
class CompatibilityRecord:
    compute_capability: str  # "8.6"
    tensorrt_version: str  # "10.8.0.43"
    hardware_compatibility: str = "none"

    def tag(self) -> str:
        """The file-name part: `sm86.trt10.8.0.43` (`.ampere_plus` when built so)."""
        cc = self.compute_capability.replace(".", "")
        return f"sm{cc}.trt{self.tensorrt_version}{_LEVEL_TAGS[self.hardware_compatibility]}"

    def as_dict(self) -> dict[str, str]:
        return {
            "computeCapability": self.compute_capability,
            "tensorrtVersion": self.tensorrt_version,
            "hardwareCompatibility": self.hardware_compatibility,
        }

    @classmethod
    def from_hardware(cls, hardware: dict[str, Any], level: str) -> CompatibilityRecord:
        return cls(str(hardware["computeCapability"]), str(hardware["tensorrtVersion"]), level)


def check_level(level: str, backend: str) -> None:
    if level not in HARDWARE_COMPATIBILITY:
        raise UserError(
            f"--hardware_compatibility {level!r}: choose one of {', '.join(HARDWARE_COMPATIBILITY)}"
        )
    if level != "none" and backend != "tensorrt":
        raise UserError(
            f"--hardware_compatibility {level}: only TensorRT engines have a hardware-"
            f"compatibility level; this is an {backend} build"
        )


def _normalized(name: str) -> str:
    """A device or label name compared as GPU feature discovery writes labels."""
    return re.sub(r"[\s_]+", "-", name.strip()).lower()


def product_matches(device_name: str, product_label: str) -> bool:
    """The device's name against `nvidia.com/gpu.product` (which may carry -SHARED, -MIG-...)."""
    device, label = _normalized(device_name), _normalized(product_label)
    return label == device or label.startswith(device + "-")


def check_expected_gpu(
    hardware: dict[str, Any], product: str | None, compute_capability: str | None
) -> None:
    """Fail before the build when this pod's GPU is not the one its pool advertises."""
    name = str(hardware.get("gpuName", "?"))
    cc = str(hardware.get("computeCapability", "?"))
    if product and not product_matches(name, product):
        raise GpuMismatchError(
            f"this pod's GPU is {name!r} (compute capability {cc}), but the target's pool "
            f"advertises nvidia.com/gpu.product={product} (--expected_gpu_product): an engine "
            "built here would not run there; check the target's nodeSelector and the nodes' "
            "labels"
        )
    if compute_capability and compute_capability != cc:
        raise GpuMismatchError(
            f"this pod's GPU {name!r} has compute capability {cc}, not "
            f"{compute_capability} (--expected_compute_capability): an engine built here "
            "would not run on the target's GPUs"
        )


def reuse_refusal(built: CompatibilityRecord, wanted: CompatibilityRecord) -> str | None:
    """Why an engine built for `built` cannot serve `wanted`, or None when it can."""
    for field, label in (
        ("compute_capability", "compute capability"),
        ("tensorrt_version", "TensorRT version"),
        ("hardware_compatibility", "hardware-compatibility level"),
    ):
        have, want = getattr(built, field), getattr(wanted, field)
        if have != want:
            return f"the engine was built for {label} {have}, this target needs {want}"
    return None
