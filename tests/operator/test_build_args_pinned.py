"""Every built-in backend's build arguments, pinned byte for byte.

The arguments a target's backend takes come from its operator part
(`bodypose_operator/api/builtin_backends/`); moving them there from booleans in the backend table
changed no Job. `data/build_args.json` was written by the code before the move (run with
`BODYPOSE_PIN_BUILD_ARGS=1` to write it again, on purpose only): each backend, each
precision it builds, each pool (a GPU pool with its product and compute labels, a pool
with the compute labels only, a CPU pool), each `int8Route`, with and without the pool's
int8 CPU class (for the backend classified by it) and each target option its backend accepts.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

import pydantic

from bodypose_operator.api.backends import BACKENDS, TARGET_OPTIONS
from bodypose_operator.api.v1alpha1 import BodyPoseExportSpec
from bodypose_operator.builders.jobs import build_args
from tests.support.operator_fakes import spec_dict

PINNED = Path(__file__).parent / "data" / "build_args.json"
BUILT_IN = ("tensorrt", "onnxruntime", "tensorrt-rtx")
POOLS: dict[str, dict[str, str]] = {
    "gpu": {"nvidia.com/gpu.product": "NVIDIA-L4", "nvidia.com/gpu.compute.major": "8",
            "nvidia.com/gpu.compute.minor": "9"},
    "labels": {"nvidia.com/gpu.compute.major": "7", "nvidia.com/gpu.compute.minor": "5"},
    "cpu": {},
}  # fmt: skip
OPTION_VALUES = {"hardwareCompatibility": "ampere+", "computeCapabilities": ["8.0", "7.5"]}


def _cases() -> dict[str, list[str] | None]:
    """Each combination's arguments, or None: admission refuses it."""
    found: dict[str, list[str] | None] = {}
    for backend, pool, route, int8_class, option in itertools.product(
        BUILT_IN, POOLS, ("auto", "qdq", "calBin"), (None, "x86-vnni"),
        (None, *(o.field for o in TARGET_OPTIONS)),
    ):  # fmt: skip
        for precision in BACKENDS[backend].precisions:
            target: dict[str, Any] = {"name": "t", "backend": backend, "nodeSelector": POOLS[pool]}
            if option is not None:
                target[option] = OPTION_VALUES[option]
            extra: dict[str, Any] = {"calibration": {"imagesUri": "s3://bucket/images"}}
            case = f"{backend} {precision} {pool} {route} {int8_class} {option}"
            try:
                spec = BodyPoseExportSpec.model_validate(spec_dict(
                    precision=precision, targets=[target], engine={"int8Route": route},
                    **(extra if precision == "int8" else {}),
                ))  # fmt: skip
            except pydantic.ValidationError:
                found[case] = None
                continue
            # The controller reads a pool's CPU class for a backend classified by it only
            # (`controller/observe.py`), and passes it to no other backend's build.
            by_class = BACKENDS[backend].int8_by_cpu_class
            found[case] = build_args(
                spec,
                spec.targets[0],
                "s3://o/p",
                "i" * 16,
                int8_class=int8_class if by_class else None,
            )
    return found


def test_every_built_in_backends_build_arguments_are_the_pinned_ones() -> None:
    cases = _cases()
    if os.environ.get("BODYPOSE_PIN_BUILD_ARGS") == "1":
        PINNED.write_text(json.dumps(cases, indent=1) + "\n")
    pinned = json.loads(PINNED.read_text())
    assert sum(args is not None for args in pinned.values()) > 100
    assert cases == pinned
