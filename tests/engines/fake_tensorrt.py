"""A stand-in `tensorrt` module: the one test double the issue allows (TensorRT cannot exist here).

It holds only the names our code and Polygraphy's loaders touch while a
build is being *assembled* (enums, calibrator base classes, the version);
nothing here builds or runs anything. Installed into `sys.modules` by the
`fake_trt` fixture for one test at a time.
"""

from __future__ import annotations

import importlib.machinery
import types
from typing import Any


class _Enum:
    def __init__(self, owner: str, *names: str) -> None:
        for name in names:
            setattr(self, name, f"{owner}.{name}")


class _Calibrator:
    def __init__(self) -> None:
        self.base_initialised = True


def module(version: str = "10.8.0.43") -> types.ModuleType:
    trt: Any = types.ModuleType("tensorrt")
    trt.__version__ = version
    # What `importlib.util.find_spec` needs of a module in sys.modules (the engine registry
    # asks whether a backend's import is there before choosing it).
    trt.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None)
    trt.MemoryPoolType = _Enum("MemoryPoolType", "WORKSPACE")
    trt.HardwareCompatibilityLevel = _Enum("HardwareCompatibilityLevel", "NONE", "AMPERE_PLUS")
    trt.LayerType = _Enum("LayerType", "CONVOLUTION", "DECONVOLUTION", "CONCATENATION")
    trt.DataType = _Enum("DataType", "FLOAT", "HALF", "INT8")
    if int(version.split(".")[0]) >= 11:
        # TensorRT 11's surface: no precision flags, no calibrators (NVIDIA's "Removed Python
        # APIs" for 11.x; TensorRT-RTX's module, which test_nvidia_builder.py builds with
        # for real, has the same gaps).
        trt.BuilderFlag = _Enum("BuilderFlag", "TF32")
        return trt
    trt.BuilderFlag = _Enum("BuilderFlag", "FP16", "INT8", "TF32", "OBEY_PRECISION_CONSTRAINTS")
    for name in (
        "IInt8EntropyCalibrator2",
        "IInt8EntropyCalibrator",
        "IInt8MinMaxCalibrator",
        "IInt8LegacyCalibrator",
        "IInt8Calibrator",
    ):
        setattr(trt, name, type(name, (_Calibrator,), {}))
    return trt
