"""TensorRT-RTX builder: the TensorRT backend's plan and Polygraphy chain, its own config step.

`plan_build` makes the TensorRT backend's `BuildPlan` for what TensorRT-RTX
takes: a strongly typed network (it has no other kind) of the FP32 graph for
fp32, of the FP16 model for fp16, TF32 off for fp32. Then the same loaders
as the TensorRT backend (`engines.trt.builder.network_loader`,
`engine_loader`, `config_arguments`), with Polygraphy's `CreateConfigRTX` in
place of `CreateConfig`, naming the compute capabilities to build for
(Polygraphy `backend/tensorrt_rtx/config.py`, which extends the TensorRT
one the same way). `CreateConfigRTX` leaves TensorRT-RTX's TF32 flag on, so
fp32 clears it after (`PostprocessConfig`), as the TensorRT backend's fp32
does.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from bodypose_exporter.engines.base import BuildRequest, BuiltEngine
from bodypose_exporter.engines.trt_rtx import epcontext, hardware
from bodypose_exporter.engines.trt_rtx.args import TensorRTRTXOptions
from bodypose_exporter.engines.trt_rtx.facts import FACTS
from bodypose_exporter.engines.trt_rtx.runtime import tensorrt_rtx
from bodypose_exporter.errors import UserError
from bodypose_exporter.serving import bindings as onnx_bindings

log = logging.getLogger(__name__)


def plan_build(request: BuildRequest) -> Any:
    """The TensorRT backend's plan type for a TensorRT-RTX build (module docstring)."""
    from bodypose_exporter.engines.trt.builder import BuildPlan

    options = request.options
    if options.precision not in FACTS.precisions:
        raise UserError(
            f"--data_type {options.precision}: TensorRT-RTX builds fp32 and fp16 engines (its "
            "INT8 quantizes GEMM weights only, not the convolutions' activations)"
        )
    model = request.onnx_path
    if options.precision == "fp16":
        if request.fp16_model is None:
            raise UserError(
                "TensorRT-RTX builds strongly typed networks only: an fp16 engine is built from "
                "the FP16 model; pass --fp16_model <model>.fp16.onnx (bpnet-export --data_type "
                "fp16 publishes it)"
            )
        model = request.fp16_model
    binding = onnx_bindings.read(model).input
    if len(binding.dims) != 3:
        raise UserError(f"{model}: input {binding.name} is not NHWC: dims {binding.dims}")
    return BuildPlan.strongly_typed_plan(
        model, options.precision, binding.name,
        (binding.dims[0], binding.dims[1], binding.dims[2]),
        options.max_batch_size, options.max_workspace_size,
    )  # fmt: skip


def config_loader(trt: Any, plan: Any, capabilities: tuple[str, ...]) -> Any:
    from polygraphy.backend.tensorrt_rtx import CreateConfigRTX
    from polygraphy.backend.trt import PostprocessConfig

    from bodypose_exporter.engines.trt.builder import config_arguments

    named = [tuple(int(p) for p in cc.split(".")) for cc in capabilities]
    config = CreateConfigRTX(**config_arguments(trt, plan), compute_capabilities=named)

    def no_tf32(builder: Any, network: Any, created: Any) -> None:
        created.clear_flag(trt.BuilderFlag.TF32)  # fp32 means FP32

    return PostprocessConfig(config, no_tf32) if plan.precision == "fp32" else config


class TensorRTRTXBuilder:
    def build(self, request: BuildRequest) -> BuiltEngine:
        from polygraphy.exception import PolygraphyException

        from bodypose_exporter.engines.trt.builder import (
            build_failure,
            engine_loader,
            network_loader,
        )

        trt = tensorrt_rtx()
        capabilities = hardware.parse_capabilities(
            ",".join(request.options.own(TensorRTRTXOptions).compute_capabilities)
        )
        plan = plan_build(request)
        chain = engine_loader(
            network_loader(trt, plan, None), config_loader(trt, plan, capabilities), plan,
            save_timing=False,
        )  # fmt: skip
        started = time.perf_counter()
        try:
            serialized = chain()
        except PolygraphyException as exc:
            raise build_failure(trt, "TensorRT-RTX", plan.model, exc) from exc
        seconds = time.perf_counter() - started
        request.engine_path.parent.mkdir(parents=True, exist_ok=True)
        request.engine_path.write_bytes(bytes(memoryview(serialized)))
        version = str(trt.__version__)
        companions: list[tuple[str, Path]] = []
        runnable = [cc for cc in capabilities if cc in hardware.ONNX_RUNTIME_PROVIDER]
        if runnable:
            model = epcontext.write(request.engine_path, plan.model, runnable[-1], version,
                                    capabilities)  # fmt: skip
            companions.append(("epcontext-model", model))
        details: dict[str, Any] = {
            **plan.as_dict(),
            "computeCapabilities": list(capabilities),
            "builderSeconds": round(seconds, 3),
            "builtWith": "polygraphy (CreateConfigRTX)",
        }
        log.info("built a TensorRT-RTX %s engine for compute capability %s in %.1f s",
                 plan.precision, ", ".join(capabilities), seconds)  # fmt: skip
        return BuiltEngine(
            request.engine_path, FACTS.name, hardware.describe(capabilities), details,
            tuple(companions), graph=plan.graph(request),
        )  # fmt: skip
