"""What a TensorRT-RTX engine is built for: compute capabilities named ahead of time.

TensorRT-RTX 1.7 builds for 7.5, 8.0, 8.6, 8.9, 12.0 and 12.1
(`tensorrt_rtx.ComputeCapability`: SM75 SM80 SM86 SM89 SM120 SM121); with
none named on a machine without a GPU it targets 8.0 and later, not 7.5.
Hopper (9.0) is not among them: an engine built on an H200 refused to load
there ("Supported compute capabilities: 8.0 8.6 8.9 12.0 12.1 >12.0"), and
Polygraphy refuses 9.0 before building ("Compute capability 9.0 (SM90) not
supported by this TensorRT-RTX version.").

Whether the engine is run here (`run_decision`) follows the CUDA device this
pod can open (`devices.probe`, the driver's answer, not the node's /proc
files) and the capabilities the engine was built for: run and verified only
on a match, else built and not run, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bodypose_contract.backends import TENSORRT_RTX
from bodypose_exporter.engines.trt_rtx import devices
from bodypose_exporter.errors import UserError

#: What this TensorRT-RTX release builds for (checked against the module when it is there):
#: the contract's row, the same list the operator's admission and the CRD read.
SUPPORTED = TENSORRT_RTX.compute_capabilities
#: What ONNX Runtime's NvTensorRTRTX execution provider runs (its documentation: Ampere
#: RTX and later, 8.6 and 8.9 and 12.x): where the EPContext model is worth writing.
ONNX_RUNTIME_PROVIDER = ("8.6", "8.9", "12.0", "12.1")


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


@dataclass(frozen=True)
class RunDecision:
    """Run the engine on `device`, or not at all (`not_run` says why)."""

    device: devices.Device | None
    not_run: str | None


def run_decision(found: devices.Probe, built_for: tuple[str, ...]) -> RunDecision:
    """Whether this pod runs an engine built for `built_for`: only on a device of those.

    The runtime runs on the current device, device 0 (CUDA's default; the pod's
    `CUDA_VISIBLE_DEVICES` decides which one that is), so that one is compared.
    """
    named = ", ".join(built_for)
    if not found.devices:
        return RunDecision(
            None,
            f"no GPU in this pod: {found.missing}; TensorRT-RTX built the engine ahead of "
            f"time for {named}, nothing ran it",
        )
    device = found.devices[0]
    if device.capability not in built_for:
        return RunDecision(
            None,
            f"this pod's GPU {device.name} (compute capability {device.capability}) is not "
            f"one the engine was built for ({named}): built, not run",
        )
    return RunDecision(device, None)


def describe(
    built_for: tuple[str, ...] = (), load: devices.Loader = devices.CDLL
) -> dict[str, Any]:
    """TensorRT-RTX's version and what it builds for, the CUDA devices this pod can open,
    and, for an engine built for `built_for`, whether it runs here (`run_decision`): the
    device it runs on (`gpuName`, `computeCapability`), or `notRunReason`."""
    from bodypose_exporter.engines.trt_rtx.runtime import tensorrt_rtx

    trt = tensorrt_rtx()
    builds_for = sorted(
        f"{int(n[2:]) // 10}.{int(n[2:]) % 10}"
        for n in trt.ComputeCapability.__members__
        if n.startswith("SM")
    )
    found = devices.probe(load)
    described: dict[str, Any] = {
        "tensorrtRtxVersion": str(trt.__version__),
        "buildsFor": builds_for,
        "cuda": found.as_dict(),
    }
    if built_for:
        decision = run_decision(found, built_for)
        described["builtFor"] = list(built_for)
        if decision.device is not None:
            described["gpuName"] = decision.device.name
            described["computeCapability"] = decision.device.capability
        else:
            described["notRunReason"] = decision.not_run
    return described


def not_run_reason(described: dict[str, Any]) -> str | None:
    """The build's decision (`describe(built_for)`), as the backend's `not_run_reason`
    (`capabilities.BuiltAheadOfTime`) gives it."""
    if "builtFor" not in described:
        return "the capabilities the engine was built for are not recorded: not run"
    reason = described.get("notRunReason")
    return str(reason) if reason is not None else None
