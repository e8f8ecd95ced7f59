"""The CUDA devices this pod can open, asked of the CUDA driver itself (libcuda.so.1).

Whether a TensorRT-RTX engine can run here is a question about the pod, not
the node: `/proc/driver/nvidia/gpus` is the host's and shows in a pod that
was given no GPU, while the driver library and the device nodes reach a
container only with a GPU (the NVIDIA Container Toolkit mounts them). So the
answer comes from the driver API, the one TensorRT-RTX's runtime uses
(libtensorrt_rtx loads `libcuda.so.1` too): `cuInit`, `cuDeviceGetCount`,
`cuDeviceGet`, `cuDeviceGetAttribute` (compute capability major 75, minor
76) and `cuDeviceGetName`, as the CUDA Driver API reference gives them
(https://docs.nvidia.com/cuda/cuda-driver-api/group__CUDA__DEVICE.html).
It honours `CUDA_VISIBLE_DEVICES` as the runtime will. No CUDA package is
needed: the CPU exporter image has none, and the library comes with the GPU.

`probe` takes the library loader as an argument so that a test can present
a missing library or a stand-in library (`tests/engines/fake_libcuda.c`).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

LIBRARY = "libcuda.so.1"
#: `CUdevice_attribute` values (cuda.h): CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, _MINOR.
_MAJOR, _MINOR = 75, 76
_NAME_BYTES = 256

Loader = Callable[[str], Any]
#: The loader of a real library: `ctypes.CDLL` (dlopen, the system's search path).
CDLL: Loader = ctypes.CDLL


@dataclass(frozen=True)
class Device:
    ordinal: int
    name: str
    capability: str  # "8.9"

    def as_dict(self) -> dict[str, Any]:
        return {"ordinal": self.ordinal, "name": self.name, "computeCapability": self.capability}


@dataclass(frozen=True)
class Probe:
    """What the driver showed: the devices, or why there are none (`missing`)."""

    devices: tuple[Device, ...]
    missing: str | None = None

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"devices": [d.as_dict() for d in self.devices]}
        if self.missing is not None:
            found["missing"] = self.missing
        return found


class _DriverError(Exception):
    pass


def _error_name(lib: Any, code: int) -> str:
    """`CUDA_ERROR_NO_DEVICE (100)`: the driver's own name for a result code."""
    text = ctypes.c_char_p()
    try:
        named = lib.cuGetErrorName(code, ctypes.byref(text)) == 0 and text.value
    except AttributeError:
        named = False
    return f"{text.value.decode(errors='replace')} ({code})" if named and text.value else str(code)


def _call(lib: Any, name: str, *args: Any) -> None:
    code = int(getattr(lib, name)(*args))
    if code != 0:
        raise _DriverError(f"{name} returned {_error_name(lib, code)}")


def _device(lib: Any, ordinal: int) -> Device:
    handle, major, minor = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    _call(lib, "cuDeviceGet", ctypes.byref(handle), ordinal)
    _call(lib, "cuDeviceGetAttribute", ctypes.byref(major), _MAJOR, handle)
    _call(lib, "cuDeviceGetAttribute", ctypes.byref(minor), _MINOR, handle)
    name = ctypes.create_string_buffer(_NAME_BYTES)
    _call(lib, "cuDeviceGetName", name, _NAME_BYTES, handle)
    return Device(ordinal, name.value.decode(errors="replace"), f"{major.value}.{minor.value}")


def probe(load: Loader = CDLL) -> Probe:
    """The CUDA devices this process can open, in the driver's order (device 0 first)."""
    try:
        lib = load(LIBRARY)
    except OSError as exc:
        return Probe((), f"the CUDA driver library {LIBRARY} cannot be loaded ({exc})")
    try:
        _call(lib, "cuInit", 0)
        count = ctypes.c_int()
        _call(lib, "cuDeviceGetCount", ctypes.byref(count))
        if count.value == 0:
            return Probe((), f"the CUDA driver ({LIBRARY}) shows no device")
        return Probe(tuple(_device(lib, i) for i in range(count.value)))
    except (_DriverError, AttributeError) as exc:
        # AttributeError: a library of that name without the driver API's symbols.
        return Probe((), f"the CUDA driver ({LIBRARY}): {exc}")
