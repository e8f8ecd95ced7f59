"""TensorRT 10 builder: a serialized engine built on the GPU it will run on.

Followed: the TensorRT 10 Python API reference (Builder, OnnxParser,
IBuilderConfig, IOptimizationProfile, ITimingCache) and NVIDIA's samples
(NVIDIA/TensorRT `samples/python/efficientdet/build_engine.py`, Polygraphy's
`backend/trt/config.py`). Each choice:

- network: `create_network(0)`; TensorRT 10 networks are always explicit
  batch (the EXPLICIT_BATCH flag is deprecated and ignored);
- one optimization profile on the input: batch min 1, opt = max =
  `--max_batch_size` (the Job serves batches up to that size; TAO's export
  builds with opt = max as well), H, W, C fixed by the ONNX model;
- `--max_workspace_size` bytes as the WORKSPACE memory-pool limit
  (`set_memory_pool_limit`, which replaced `max_workspace_size`);
- fp32: TF32 cleared (TensorRT enables it by default on Ampere and newer,
  which rounds convolution inputs to a 10-bit mantissa, as much error as
  FP16 storage): fp32 means FP32, and its gate is tight; fp16 is there for
  speed;
- fp16: BuilderFlag.FP16. int8: INT8 and FP16 (layers without an INT8
  kernel fall back to FP16, not FP32, as TAO builds them), then, in order:
  our cal.bin replayed by an IInt8EntropyCalibrator2 (`calibrator`);
  calibration from the tensorfile when there is no cache; or, with neither,
  the QDQ model (explicit quantization: no calibrator);
- `-s`: OBEY_PRECISION_CONSTRAINTS with per-layer precisions (`precision`);
- the timing cache: loaded from the given path when it exists
  (`create_timing_cache` + `set_timing_cache(ignore_mismatch=False)`: a
  cache from another GPU model or TensorRT version is rejected by TensorRT
  and the build starts a fresh one), saved back after the build, so the
  next build on the same GPU model skips tactic timing it already did;
- `build_serialized_network`, written as the engine file.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from bodypose_exporter.calibration import calibration_cache
from bodypose_exporter.engines.base import BuildRequest, BuiltEngine
from bodypose_exporter.engines.trt import hardware
from bodypose_exporter.engines.trt import precision as layer_precision
from bodypose_exporter.engines.trt.calibrator import make_calibrator
from bodypose_exporter.engines.trt.runtime import tensorrt
from bodypose_exporter.errors import UserError

log = logging.getLogger(__name__)


def _int8_source(request: BuildRequest) -> str:
    if request.calibration_cache is not None and request.calibration_cache.exists():
        return "calibration-cache"
    if request.calibration_data is not None:
        return "tensorfile"
    if request.qdq_model is not None:
        return "qdq"
    raise UserError(
        "an int8 TensorRT engine needs the calibration cache (--cal_cache_file cal.bin), a "
        "calibration tensorfile (--cal_data_file) or the QDQ model (--qdq_model)"
    )


def _parse(trt: Any, builder: Any, logger: Any, model: Path) -> tuple[Any, Any]:
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(model)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise UserError(f"TensorRT cannot parse {model}: {errors}")
    return network, parser


def _profile(builder: Any, network: Any, min_batch: int, opt_batch: int, max_batch: int) -> Any:
    profile = builder.create_optimization_profile()
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        dims = [int(d) for d in tuple(tensor.shape)[1:]]
        if any(d < 1 for d in dims):
            raise UserError(
                f"input {tensor.name} has dynamic dims {list(tensor.shape)}; only the batch may be"
            )
        profile.set_shape(tensor.name, [min_batch, *dims], [opt_batch, *dims], [max_batch, *dims])
    return profile


def _load_timing_cache(config: Any, path: Path | None) -> tuple[Any, int]:
    data = path.read_bytes() if path is not None and path.exists() else b""
    cache = config.create_timing_cache(data)
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        log.warning("timing cache %s is from another GPU or TensorRT: starting a fresh one", path)
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, ignore_mismatch=False)
        data = b""
    return cache, len(data)


def _scaled_tensors(path: Path | None) -> set[str]:
    if path is None or not path.exists():
        return set()
    return set(calibration_cache.read(path).scales)


class TensorRTBuilder:
    """Builds the engine: `build(request)`; `backend.py` pairs it with the runner."""

    def build(self, request: BuildRequest) -> BuiltEngine:
        trt = tensorrt()
        logger = trt.Logger(trt.Logger.WARNING)
        builder = trt.Builder(logger)
        int8_source = _int8_source(request) if request.precision == "int8" else None
        model = request.qdq_model if int8_source == "qdq" else request.onnx_path
        assert model is not None
        network, _parser = _parse(trt, builder, logger, model)
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, request.max_workspace_size)
        config.add_optimization_profile(
            _profile(builder, network, 1, request.max_batch_size, request.max_batch_size)
        )
        calibrator = None
        if request.precision == "fp32":
            config.clear_flag(trt.BuilderFlag.TF32)
        if request.precision in ("fp16", "int8"):
            config.set_flag(trt.BuilderFlag.FP16)
        if request.precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)
            if int8_source != "qdq":
                batch = request.calibration_batch_size
                input_shape = tuple(int(d) for d in tuple(network.get_input(0).shape)[1:])
                calibrator = make_calibrator(
                    trt,
                    request.calibration_cache,
                    request.calibration_data if int8_source == "tensorfile" else None,
                    request.calibration_batches,
                    batch,
                    input_shape,  # type: ignore[arg-type]
                )
                config.int8_calibrator = calibrator
                # TensorRT calibrates at the calibration profile's shapes: the batch it is fed.
                config.set_calibration_profile(_profile(builder, network, batch, batch, batch))
        if request.strict_types and int8_source != "qdq":
            layer_precision.constrain(
                trt, network, config, request.precision, _scaled_tensors(request.calibration_cache)
            )
        timing_cache, loaded = _load_timing_cache(config, request.timing_cache)
        started = time.perf_counter()
        serialized = builder.build_serialized_network(network, config)
        seconds = time.perf_counter() - started
        if calibrator is not None:
            calibrator.release()
        if serialized is None:
            raise RuntimeError("TensorRT failed to build the engine (its log above says why)")
        request.engine_path.parent.mkdir(parents=True, exist_ok=True)
        request.engine_path.write_bytes(memoryview(serialized))
        details: dict[str, Any] = {
            "int8Source": int8_source,
            "optimizationProfile": {
                "min": 1,
                "opt": request.max_batch_size,
                "max": request.max_batch_size,
            },
            "maxWorkspaceSize": request.max_workspace_size,
            "strictTypeConstraints": request.strict_types,
            "builderSeconds": round(seconds, 3),
        }
        if request.timing_cache is not None:
            saved = bytes(memoryview(timing_cache.serialize()))
            request.timing_cache.parent.mkdir(parents=True, exist_ok=True)
            request.timing_cache.write_bytes(saved)
            details["timingCache"] = {"loadedBytes": loaded, "savedBytes": len(saved)}
        return BuiltEngine(request.engine_path, "tensorrt", hardware.describe(), details)
