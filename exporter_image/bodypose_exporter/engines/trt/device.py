"""Device buffers and a stream through cuda-python's runtime API (see `runtime`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from bodypose_exporter.engines.trt.runtime import check, cudart


class DeviceBuffer:
    """`nbytes` of device memory (cudaMalloc), copied to and from host arrays on a stream."""

    def __init__(self, nbytes: int) -> None:
        self.nbytes = nbytes
        self.ptr: int = int(check(cudart().cudaMalloc(nbytes)))

    def upload(self, host: npt.NDArray[Any], stream: Any) -> None:
        data = np.ascontiguousarray(host)
        if data.nbytes > self.nbytes:
            raise ValueError(f"{data.nbytes} bytes do not fit a {self.nbytes}-byte buffer")
        rt = cudart()
        kind = rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        check(rt.cudaMemcpyAsync(self.ptr, data.ctypes.data, data.nbytes, kind, stream))
        check(rt.cudaStreamSynchronize(stream))  # `data` may be a temporary copy

    def download(self, host: npt.NDArray[Any], stream: Any) -> None:
        """Copy into `host` (C-contiguous); the caller synchronizes the stream."""
        rt = cudart()
        kind = rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        check(rt.cudaMemcpyAsync(host.ctypes.data, self.ptr, host.nbytes, kind, stream))

    def free(self) -> None:
        if self.ptr:
            check(cudart().cudaFree(self.ptr))
            self.ptr = 0


def create_stream() -> Any:
    return check(cudart().cudaStreamCreate())


def destroy_stream(stream: Any) -> None:
    check(cudart().cudaStreamDestroy(stream))


def synchronize(stream: Any) -> None:
    check(cudart().cudaStreamSynchronize(stream))
