"""TensorRT 10 backend: a serialized engine built on the GPU it will run on.

Only importable where TensorRT is (the target pools' image, built on NVIDIA's
TensorRT container); its tests skip elsewhere. Followed: the TensorRT 10 Python
API reference (docs.nvidia.com/deeplearning/tensorrt/api/python_api):
`Builder`, `OnnxParser`, `IBuilderConfig.set_memory_pool_limit`,
`add_optimization_profile`, `BuilderFlag.FP16/INT8/OBEY_PRECISION_CONSTRAINTS`,
`create_timing_cache`/`set_timing_cache`, `IInt8EntropyCalibrator2`,
`build_serialized_network`, and `IExecutionContext.set_input_shape`,
`set_tensor_address`, `execute_async_v3`.

Device memory goes through NVIDIA's cuda-python bindings
(`cuda.bindings.runtime`), not pycuda: they are NVIDIA's supported bindings,
ship as wheels matched to the CUDA major version, and need no build step in
the image; pycuda compiles against the local CUDA toolkit.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from bodypose_exporter.engines.base import BuildRequest, BuiltEngine
from bodypose_exporter.errors import UserError

log = logging.getLogger(__name__)


def _trt() -> Any:
    try:
        import tensorrt
    except ImportError as exc:
        raise UserError(
            "--engine_backend tensorrt needs TensorRT and a GPU, which exist only in the target "
            "pools' image; here use --engine_backend onnxruntime"
        ) from exc
    return tensorrt


def _cudart() -> Any:
    from cuda.bindings import runtime as cudart

    return cudart


def _check(result: Any) -> Any:
    err, *rest = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise RuntimeError(f"CUDA error {err}")
    return rest[0] if len(rest) == 1 else rest


def hardware() -> dict[str, Any]:
    trt, cudart = _trt(), _cudart()
    props = _check(cudart.cudaGetDeviceProperties(0))
    runtime_version = _check(cudart.cudaRuntimeGetVersion())
    return {
        "gpuName": props.name.decode() if isinstance(props.name, bytes) else str(props.name),
        "computeCapability": f"{props.major}.{props.minor}",
        "tensorrtVersion": trt.__version__,
        "cudaVersion": f"{runtime_version // 1000}.{(runtime_version % 1000) // 10}",
    }


def _calibration_cache_calibrator(trt: Any, cache: bytes) -> Any:
    """An entropy calibrator that only replays our cal.bin (batch source never asked)."""

    class CacheCalibrator(trt.IInt8EntropyCalibrator2):  # type: ignore[misc]
        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names: list[str]) -> None:
            return None  # no data: TensorRT uses the cache below

        def read_calibration_cache(self) -> bytes:
            return cache

        def write_calibration_cache(self, cache: bytes) -> None:
            return None

    return CacheCalibrator()


class TensorRTBackend:
    name = "tensorrt"

    def build(self, request: BuildRequest) -> BuiltEngine:
        trt = _trt()
        logger = trt.Logger(trt.Logger.WARNING)
        builder = trt.Builder(logger)
        network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(request.onnx_path)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise UserError(f"TensorRT cannot parse {request.onnx_path}: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, request.max_workspace_size)
        profile = builder.create_optimization_profile()
        for i in range(network.num_inputs):
            tensor = network.get_input(i)
            dims = list(tensor.shape)[1:]
            profile.set_shape(
                tensor.name,
                [1, *dims],
                [request.max_batch_size, *dims],
                [request.max_batch_size, *dims],
            )
        config.add_optimization_profile(profile)
        if request.precision in ("fp16", "int8"):
            config.set_flag(trt.BuilderFlag.FP16)
        if request.precision == "int8":
            if request.calibration_cache is None:
                raise UserError("int8 engines need the calibration cache (cal.bin)")
            config.set_flag(trt.BuilderFlag.INT8)
            config.int8_calibrator = _calibration_cache_calibrator(
                trt, request.calibration_cache.read_bytes()
            )
            config.set_calibration_profile(profile)
        if request.strict_types:
            config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
        cache_bytes = b""
        if request.timing_cache and request.timing_cache.exists():
            cache_bytes = request.timing_cache.read_bytes()
        timing_cache = config.create_timing_cache(cache_bytes)
        config.set_timing_cache(timing_cache, ignore_mismatch=False)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise RuntimeError("TensorRT failed to build the engine (see its log above)")
        request.engine_path.write_bytes(bytes(serialized))
        if request.timing_cache:
            request.timing_cache.write_bytes(bytes(config.get_timing_cache().serialize()))
        return BuiltEngine(request.engine_path, self.name, hardware())

    def load(self, engine_path: Path) -> TensorRTRunner:
        return TensorRTRunner(engine_path)


class TensorRTRunner:
    def __init__(self, engine_path: Path) -> None:
        trt = _trt()
        self._cudart = _cudart()
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(engine_path.read_bytes())
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if n not in self.inputs]

    def run(self, inputs: np.ndarray) -> dict[str, np.ndarray]:
        cudart = self._cudart
        host_in = np.ascontiguousarray(inputs, dtype=np.float32)
        self.context.set_input_shape(self.inputs[0], host_in.shape)
        stream = _check(cudart.cudaStreamCreate())
        buffers: list[int] = []
        try:
            d_in = _check(cudart.cudaMalloc(host_in.nbytes))
            buffers.append(d_in)
            _check(cudart.cudaMemcpy(d_in, host_in.ctypes.data, host_in.nbytes,
                                     cudart.cudaMemcpyKind.cudaMemcpyHostToDevice))  # fmt: skip
            self.context.set_tensor_address(self.inputs[0], d_in)
            host_out: dict[str, np.ndarray] = {}
            for name in self.outputs:
                out = np.empty(tuple(self.context.get_tensor_shape(name)), dtype=np.float32)
                d_out = _check(cudart.cudaMalloc(out.nbytes))
                buffers.append(d_out)
                self.context.set_tensor_address(name, d_out)
                host_out[name] = out
            if not self.context.execute_async_v3(stream):
                raise RuntimeError("TensorRT execution failed")
            _check(cudart.cudaStreamSynchronize(stream))
            for name, d_out in zip(self.outputs, buffers[1:], strict=True):
                out = host_out[name]
                _check(cudart.cudaMemcpy(out.ctypes.data, d_out, out.nbytes,
                                         cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost))  # fmt: skip
            return host_out
        finally:
            for ptr in buffers:
                cudart.cudaFree(ptr)
            cudart.cudaStreamDestroy(stream)
