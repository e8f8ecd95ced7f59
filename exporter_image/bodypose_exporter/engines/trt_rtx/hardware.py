"""What a TensorRT-RTX engine is built for: compute capabilities named ahead of time.

TensorRT-RTX 1.7 builds for 7.5, 8.0, 8.6, 8.9, 12.0 and 12.1
(`tensorrt_rtx.ComputeCapability`: SM75 SM80 SM86 SM89 SM120 SM121); with
none named on a machine without a GPU it targets 8.0 and later, not 7.5.
Hopper (9.0) is not among them: an engine built on an H200 refused to load
there ("Supported compute capabilities: 8.0 8.6 8.9 12.0 12.1 >12.0"), and
Polygraphy refuses 9.0 before building ("Compute capability 9.0 (SM90) not
supported by this TensorRT-RTX version."). The GPUs a pod sees are read from
the NVIDIA driver's /proc files, which exist only where a GPU is passed in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bodypose_exporter.errors import UserError

#: What this TensorRT-RTX release builds for (checked against the module when it is there).
SUPPORTED = ("7.5", "8.0", "8.6", "8.9", "12.0", "12.1")
#: What ONNX Runtime's NvTensorRTRTX execution provider runs (its documentation: Ampere
#: RTX and later, 8.6 and 8.9 and 12.x): where the EPContext model is worth writing.
ONNX_RUNTIME_PROVIDER = ("8.6", "8.9", "12.0", "12.1")
_DRIVER_GPUS = Path("/proc/driver/nvidia/gpus")


class UnsupportedCapabilityError(UserError):
    reason = "UnsupportedComputeCapability"


def parse_capabilities(text: str) -> tuple[str, ...]:
    """`--compute_capabilities 8.9,7.5` as ("7.5", "8.9"); refused when TensorRT-RTX has none."""
    given = {c.strip() for c in text.split(",") if c.strip()}
    if not given:
        raise UserError("--compute_capabilities: name at least one, e.g. 8.9")
    for cc in sorted(given):
        major, _, minor = cc.partition(".")
        if not (major.isdigit() and minor.isdigit()):
            raise UserError(f"--compute_capabilities {cc!r}: give MAJOR.MINOR, e.g. 8.9")
    named = tuple(sorted(given, key=lambda c: tuple(int(p) for p in c.split("."))))
    refused = [cc for cc in named if cc not in SUPPORTED]
    if refused:
        hopper = " (Hopper: TensorRT-RTX does not run there; build with tensorrt)" if any(
            cc.startswith("9.") for cc in refused) else ""  # fmt: skip
        raise UnsupportedCapabilityError(
            f"--compute_capabilities {', '.join(refused)}: TensorRT-RTX builds for "
            f"{', '.join(SUPPORTED)} only{hopper}"
        )
    return named


def tag(capabilities: tuple[str, ...]) -> str:
    """`sm75_89`: the file-name part of the capabilities an engine was built for."""
    return "sm" + "_".join(cc.replace(".", "") for cc in capabilities)


def visible_gpus(root: Path = _DRIVER_GPUS) -> list[str]:
    """Model names of the GPUs the NVIDIA driver shows this pod (none without one)."""
    if not root.is_dir():
        return []
    names = []
    for info in sorted(root.glob("*/information")):
        for line in info.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model":
                names.append(value.strip())
    return names


def describe() -> dict[str, Any]:
    from bodypose_exporter.engines.trt_rtx.runtime import tensorrt_rtx

    trt = tensorrt_rtx()
    built_for = sorted(
        f"{int(n[2:]) // 10}.{int(n[2:]) % 10}"
        for n in trt.ComputeCapability.__members__
        if n.startswith("SM")
    )
    return {
        "tensorrtRtxVersion": str(trt.__version__),
        "buildsFor": built_for,
        "gpus": visible_gpus(),
    }
