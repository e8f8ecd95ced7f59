"""Importing TensorRT-RTX, and switching Polygraphy to it before Polygraphy is first imported.

Polygraphy reads `POLYGRAPHY_USE_TENSORRT_RTX` once (`polygraphy.config`),
and each of its `backend.trt` modules binds its `trt` to `tensorrt` or
`tensorrt_rtx` when first imported, so one process drives one of the two;
a TensorRT-RTX build in a process that already imported Polygraphy for
TensorRT is refused with the reason instead of building with the wrong one.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

from bodypose_exporter.errors import UserError

SWITCH = "POLYGRAPHY_USE_TENSORRT_RTX"


def use_tensorrt_rtx() -> None:
    """Make Polygraphy drive TensorRT-RTX in this process (module docstring)."""
    if "polygraphy" in sys.modules and os.environ.get(SWITCH) != "1":
        raise RuntimeError(
            "Polygraphy was imported for TensorRT before a TensorRT-RTX build: one process "
            "builds with one of the two (run the build in a process of its own)"
        )
    os.environ[SWITCH] = "1"


def tensorrt_rtx() -> ModuleType:
    try:
        trt: ModuleType = importlib.import_module("tensorrt_rtx")
    except ImportError as exc:
        raise UserError(
            "--engine_backend tensorrt-rtx needs NVIDIA TensorRT-RTX (pip install "
            f"tensorrt-rtx-cu13): {exc}"
        ) from exc
    return trt


use_tensorrt_rtx()
