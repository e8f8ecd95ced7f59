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
by the caller. The checks that apply to any backend ask its facts and the optional
interfaces it implements (`check_level`, `check_foreign_options`, `engines.capabilities`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from typing import Any

from bodypose_contract.manifest import Key
from bodypose_exporter.engines.base import BackendFacts, CompatibilityRecord, EngineOptions
from bodypose_exporter.engines.capabilities import OwnsArguments
from bodypose_exporter.errors import UserError

#: In file names `+` would read as a space to S3 tools that form-decode keys.
_LEVEL_TAGS = {"none": "", "ampere+": ".ampere_plus"}


class GpuMismatchError(UserError):
    reason = "GpuMismatch"


def tensorrt_record(hardware: dict[str, Any], level: str) -> CompatibilityRecord:
    """A TensorRT engine's record: compute capability, TensorRT version, level; its tag is
    the file-name part `sm86.trt10.8.0.43` (`.ampere_plus` when built so)."""
    cc, version = str(hardware["computeCapability"]), str(hardware["tensorrtVersion"])
    return CompatibilityRecord(
        {Key.COMPUTE_CAPABILITY: cc, "tensorrtVersion": version, "hardwareCompatibility": level},
        tag=f"sm{cc.replace('.', '')}.trt{version}{_LEVEL_TAGS[level]}",
    )


def check_level(level: str, facts: BackendFacts) -> None:
    """`--hardware_compatibility` must be a level this backend has."""
    if level in facts.hardware_compatibility_levels:
        return
    known = ("none", "ampere+")
    if level not in known:
        raise UserError(f"--hardware_compatibility {level!r}: choose one of {', '.join(known)}")
    raise UserError(
        f"--hardware_compatibility {level}: only TensorRT engines have a hardware-"
        f"compatibility level; this is an {facts.name} build"
    )


def check_foreign_options(
    options: EngineOptions, facts: BackendFacts, registered: Iterable[BackendFacts]
) -> None:
    """A flag of another backend's own group (`EngineOptions.backend_options`) given to this
    build is refused, not ignored: --int8_instruction_set on a tensorrt build would
    otherwise build something the user did not ask for."""
    own = facts.options_type if isinstance(facts, OwnsArguments) else None
    owners = {f.options_type: f.name for f in registered if isinstance(f, OwnsArguments)}
    for given in options.backend_options:
        if type(given) is own:
            continue
        default = type(given)()
        for f in dataclasses.fields(given):
            if getattr(given, f.name) != getattr(default, f.name):
                owner = owners.get(type(given), "another backend's")
                raise UserError(
                    f"{f.metadata['flag']}: only {owner} builds take it; this build is {facts.name}"
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
