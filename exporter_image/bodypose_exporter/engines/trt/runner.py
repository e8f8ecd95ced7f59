"""Running a TensorRT 10 engine: name-based I/O, one stream, device buffers sized once.

Followed: TensorRT 10 Python API (`ICudaEngine.num_io_tensors`,
`get_tensor_name`, `get_tensor_mode`, `get_tensor_dtype`,
`get_tensor_profile_shape`; `IExecutionContext.set_input_shape`,
`get_tensor_shape`, `set_tensor_address`, `execute_async_v3`) and
NVIDIA/TensorRT `samples/python/common_runtime.py`. Buffers are allocated for
the profile's largest batch when the engine is loaded; each run sets the
actual input shape and reads back the outputs' shapes for that batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bodypose_exporter.engines.trt.device import (
    DeviceBuffer,
    create_stream,
    destroy_stream,
    synchronize,
)
from bodypose_exporter.engines.trt.runtime import tensorrt


class TensorRTRunner:
    def __init__(self, engine_path: Path) -> None:
        trt = tensorrt()
        self._trt = trt
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self._runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if self.engine is None:
            raise RuntimeError(
                f"TensorRT cannot load {engine_path} (built for another GPU or version?)"
            )
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        if len(inputs) != 1:
            raise RuntimeError(f"expected one input tensor, the engine has {inputs}")
        self.input_name: str = inputs[0]
        self.output_names: list[str] = [n for n in names if n != self.input_name]
        max_shape = tuple(self.engine.get_tensor_profile_shape(self.input_name, 0)[2])
        self.max_batch_size: int = int(max_shape[0])
        self.context.set_input_shape(self.input_name, max_shape)
        self._stream = create_stream()
        self._buffers: dict[str, DeviceBuffer] = {}
        for name in names:
            dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(name)))
            shape = self.context.get_tensor_shape(name)
            self._buffers[name] = DeviceBuffer(int(np.prod(tuple(shape))) * dtype.itemsize)
            self.context.set_tensor_address(name, self._buffers[name].ptr)

    def _dtype(self, name: str) -> np.dtype[Any]:
        dtype: np.dtype[Any] = np.dtype(self._trt.nptype(self.engine.get_tensor_dtype(name)))
        return dtype

    def run(self, inputs: npt.NDArray[np.float32]) -> dict[str, npt.NDArray[np.float32]]:
        if not 1 <= len(inputs) <= self.max_batch_size:
            raise ValueError(f"batch of {len(inputs)}; this engine takes 1..{self.max_batch_size}")
        batch = np.ascontiguousarray(inputs, dtype=self._dtype(self.input_name))
        self.context.set_input_shape(self.input_name, batch.shape)
        self._buffers[self.input_name].upload(batch, self._stream)
        if not self.context.execute_async_v3(int(self._stream)):
            raise RuntimeError("TensorRT execution failed (its log above says why)")
        outputs: dict[str, npt.NDArray[np.float32]] = {}
        for name in self.output_names:
            host = np.empty(tuple(self.context.get_tensor_shape(name)), dtype=self._dtype(name))
            self._buffers[name].download(host, self._stream)
            outputs[name] = host  # type: ignore[assignment]
        synchronize(self._stream)
        return {n: v.astype(np.float32, copy=False) for n, v in outputs.items()}

    #: What `time_inference` measures (verification.latency records it): GPU time between
    #: two CUDA events, the input already on the device and the outputs left there.
    clock = "cuda-events"
    timed_includes = ("inference",)
    timed_how = "CUDA events around execute_async_v3 on the engine's stream"

    def time_inference(self, inputs: npt.NDArray[np.float32]) -> float:
        """Seconds the engine takes on `inputs`, by CUDA events around `execute_async_v3`
        (the copies to and from the device not included)."""
        from bodypose_exporter.engines.trt.runtime import check, cudart

        rt = cudart()
        batch = np.ascontiguousarray(inputs, dtype=self._dtype(self.input_name))
        self.context.set_input_shape(self.input_name, batch.shape)
        self._buffers[self.input_name].upload(batch, self._stream)
        start, stop = check(rt.cudaEventCreate()), check(rt.cudaEventCreate())
        try:
            check(rt.cudaEventRecord(start, self._stream))
            if not self.context.execute_async_v3(int(self._stream)):
                raise RuntimeError("TensorRT execution failed (its log above says why)")
            check(rt.cudaEventRecord(stop, self._stream))
            check(rt.cudaEventSynchronize(stop))
            milliseconds = float(check(rt.cudaEventElapsedTime(start, stop)))
        finally:
            rt.cudaEventDestroy(start)
            rt.cudaEventDestroy(stop)
        return milliseconds / 1000.0

    def close(self) -> None:
        for buffer in self._buffers.values():
            buffer.free()
        self._buffers.clear()
        if self._stream is not None:
            destroy_stream(self._stream)
            self._stream = None
