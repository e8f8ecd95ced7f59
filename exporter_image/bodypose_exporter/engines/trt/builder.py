"""TensorRT 10 builder through Polygraphy's loaders: a serialized engine for the GPU it runs on.

Followed: Polygraphy (pinned in pyproject) `backend/trt/loader.py`
(`NetworkFromOnnxPath`, `PostprocessNetwork`, `EngineBytesFromNetwork`),
`backend/trt/config.py` (`CreateConfig`, `PostprocessConfig`),
`backend/trt/profile.py` (`Profile`), `backend/trt/calibrator.py`; the
TensorRT 10 Python API reference and developer guide ("Explicit
Quantization", "Strongly Typed Networks", "Hardware Compatibility").

The build is planned first without TensorRT (`plan_build`: a pure function
of the request, the ONNX model and the TensorRT version), then the plan
becomes a chain of Polygraphy's lazy loaders (`network_loader`,
`config_loader`, `engine_loader`), which TensorRT runs when the last one is
called. Each choice:

- network: parsed from the ONNX file (`NetworkFromOnnxPath`); TensorRT 10
  networks are always explicit batch;
- one optimization profile on the input: batch min 1, opt = max =
  `--max_batch_size`, H, W, C from the ONNX model;
- `--max_workspace_size` as the WORKSPACE memory-pool limit;
- the network's typing, by TensorRT version (NVIDIA's developer guide,
  "Strongly Typed Networks"; its 10.x to 11.x "Removed Python APIs"): from
  TensorRT 10 on, a strongly typed network by default, each layer in the
  type its model gives it, no precision flags; TensorRT 11 has no other
  kind, so what needs the weakly typed route is refused there before any
  work, saying what to use (`refuse_removed`);
- fp32: the FP32 graph as it is, TF32 off (TensorRT enables it by default
  from Ampere on; it rounds convolution inputs to a 10-bit mantissa): fp32
  means FP32;
- fp16, two routes (`fp16_route`): `strong`, the FP16 mixed-precision model
  (`--fp16_model`, `convert.fp16`), from TensorRT 10 on when it is given;
  `weak`, the FP16 and TF32 flags over the FP32 graph (TensorRT 8, or 10
  without the FP16 model, or with -s);
- int8, two routes (`--int8_route`, `resolve_route`):
  - `qdq` (default from TensorRT 10 on, when the QDQ model is there): a
    strongly typed network from the explicitly quantized model; no
    precision flags (TensorRT refuses them on a strongly typed network), no
    calibrator: every layer runs in the type the QDQ model gives it;
  - `cal_bin` (TensorRT's implicit quantization, deprecated in 10.1,
    removed in 11; kept because DeepStream and TAO read cal.bin): INT8 and
    FP16 flags, Polygraphy's `Calibrator` replaying our cal.bin re-stamped
    for this TensorRT (`calibrator`), or calibrating from the tensorfile;
- `-s` (`precision`): OBEY_PRECISION_CONSTRAINTS on the convolutions; with a
  tensorfile and no cache, TensorRT calibrates first (a quick build at
  optimization level 0, the engine discarded) so that the constrained set
  comes from the scales it wrote;
- `--hardware_compatibility ampere+`: TensorRT's AMPERE_PLUS level;
- the timing cache: loaded by `CreateConfig` when the file exists and
  saved back (merged) by `EngineBytesFromNetwork`; the details say how many
  bytes it had before the build (`loadedBytes`, 0: none, every tactic timed)
  and after (`savedBytes`).

Hand-written TensorRT calls, where Polygraphy falls short: the calibration
profile (`_calibration_profile`; Polygraphy calibrates at the last
optimization profile's shapes, ours is the engine's profile up to
`--max_batch_size`, while the tensorfile's batches are `--batch_size`: a
second profile only for calibration would end up in the engine) and the
per-layer precisions of `-s` (`precision.apply`, run by Polygraphy's
`PostprocessNetwork`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polygraphy.backend.trt import (
    CreateConfig,
    EngineBytesFromNetwork,
    NetworkFromOnnxPath,
    PostprocessConfig,
    PostprocessNetwork,
    Profile,
)
from polygraphy.exception import PolygraphyException

from bodypose_contract.manifest import Key
from bodypose_exporter.calibration import calibration_cache
from bodypose_exporter.engines.base import BuildRequest, BuiltEngine, Graph
from bodypose_exporter.engines.trt import hardware
from bodypose_exporter.engines.trt import precision as layer_precision
from bodypose_exporter.engines.trt.args import INT8_ROUTES, TensorRTOptions
from bodypose_exporter.engines.trt.calibrator import (
    TensorfileFeed,
    check_tensorfile,
    make_calibrator,
)
from bodypose_exporter.engines.trt.facts import FACTS
from bodypose_exporter.engines.trt.runtime import tensorrt
from bodypose_exporter.errors import UserError
from bodypose_exporter.serving import bindings as onnx_bindings

log = logging.getLogger(__name__)

#: TensorRT releases from which `auto` takes the strongly typed routes (the QDQ model,
#: the FP16 model).
STRONGLY_TYPED_FROM = 10
#: TensorRT releases with strongly typed networks only: no precision flags, no
#: calibrator, no precision constraints (NVIDIA's "Removed Python APIs" for 11.x).
STRONGLY_TYPED_ONLY_FROM = 11
#: The calibrator TAO uses, for caches TensorRT writes from the tensorfile.
DEFAULT_CALIBRATOR = "IInt8EntropyCalibrator2"


def trt_major(version: str) -> int:
    return int(version.split(".")[0])


def resolve_route(request: BuildRequest, trt_version: str) -> str:
    """`--int8_route` as `qdq` or `cal_bin` (`auto` resolved); UserError if its input is missing."""
    route = request.options.own(TensorRTOptions).int8_route
    if route not in INT8_ROUTES:
        raise UserError(f"--int8_route {route!r}: choose one of {', '.join(INT8_ROUTES)}")
    has_cache = request.calibration_cache is not None and request.calibration_cache.exists()
    has_tensorfile = request.calibration_data is not None
    has_qdq = request.qdq_model is not None
    if route == "auto":
        if has_qdq and trt_major(trt_version) >= STRONGLY_TYPED_FROM:
            return "qdq"
        if has_cache or has_tensorfile:
            return "cal_bin"
        if has_qdq:
            return "qdq"
        raise UserError(
            "an int8 TensorRT engine needs the QDQ model (--qdq_model), the calibration cache "
            "(--cal_cache_file cal.bin) or a calibration tensorfile (--cal_data_file)"
        )
    if route == "qdq" and not has_qdq:
        raise UserError("--int8_route qdq builds from the QDQ model: pass --qdq_model")
    if route == "cal_bin" and not (has_cache or has_tensorfile):
        raise UserError(
            "--int8_route cal_bin needs an existing --cal_cache_file or a --cal_data_file "
            f"tensorfile; {request.calibration_cache} does not exist"
        )
    return route


def refuse_removed(request: BuildRequest, trt_version: str) -> None:
    """TensorRT 11 builds strongly typed networks only: refuse, before any work, what needs
    the weakly typed route it removed, saying what to use instead."""
    if trt_major(trt_version) < STRONGLY_TYPED_ONLY_FROM:
        return
    options, where = request.options, f"TensorRT {trt_version}"
    removed = "removed the weakly typed route (precision flags, calibrators, precision "
    if options.precision == "fp16" and request.fp16_model is None:
        raise UserError(
            f"{where} {removed}constraints): an fp16 engine is built from the FP16 model; "
            "pass --fp16_model <model>.fp16.onnx (bpnet-export --data_type fp16 publishes it)"
        )
    if options.precision == "int8" and options.own(TensorRTOptions).int8_route == "cal_bin":
        raise UserError(
            f"--int8_route cal_bin: {where} {removed}constraints): an int8 engine is built "
            "from the QDQ model; pass --qdq_model and --int8_route qdq (or auto). cal.bin is "
            "still published for DeepStream and TAO on TensorRT 8 and 10"
        )
    if options.strict_types:
        raise UserError(
            f"-s/--strict_type_constraints: {where} {removed}constraints): a strongly typed "
            "network runs every layer in the type its model gives it; drop -s"
        )


def fp16_route(request: BuildRequest, trt_version: str) -> str:
    """fp16: `strong` (the FP16 model, from TensorRT 10 on when it is given and -s is not)
    or `weak` (the FP16 builder flag: TensorRT 8, or 10 without the FP16 model or with -s)."""
    major = trt_major(trt_version)
    if major >= STRONGLY_TYPED_ONLY_FROM:
        return "strong"
    given = request.fp16_model is not None
    return (
        "strong"
        if given and major >= STRONGLY_TYPED_FROM and not request.options.strict_types
        else "weak"
    )


@dataclass(frozen=True)
class BuildPlan:
    """Everything the build decides before TensorRT is imported."""

    model: Path  # the ONNX TensorRT parses
    precision: str
    route: str | None  # int8 only: qdq | cal_bin
    int8_source: str | None  # qdq | calibration-cache | tensorfile
    fp16_route: str | None  # fp16 only: strong (the FP16 model) | weak (the FP16 flag)
    strongly_typed: bool
    tf32: bool
    fp16: bool
    int8: bool
    input_name: str
    input_shape: tuple[int, int, int]
    profile: tuple[int, int, int]  # batch min, opt, max
    calibration_batch: int | None
    workspace: int
    timing_cache: Path | None
    hardware_compatibility: str
    strict: bool
    #: -s with a tensorfile and no cache: calibrate first, constrain from the scales written.
    calibrate_first: bool = False
    notes: tuple[str, ...] = field(default=())

    @classmethod
    def strongly_typed_plan(
        cls, model: Path, precision: str, input_name: str, input_shape: tuple[int, int, int],
        max_batch: int, workspace: int,
    ) -> BuildPlan:  # fmt: skip
        """A strongly typed build of `model` as it is (its own types decide each layer's
        precision: no flags, no int8 source, no timing cache, no hardware-compatibility
        level), batches 1 to `max_batch` optimised for `max_batch`. The public surface a
        variant of this backend builds on (`engines/trt_rtx/builder.py`)."""
        return cls(
            model=model, precision=precision, route=None, int8_source=None,
            fp16_route="strong" if precision == "fp16" else None, strongly_typed=True,
            tf32=False, fp16=False, int8=False, input_name=input_name, input_shape=input_shape,
            profile=(1, max_batch, max_batch), calibration_batch=None, workspace=workspace,
            timing_cache=None, hardware_compatibility="none", strict=False,
        )  # fmt: skip

    def graph(self, request: BuildRequest) -> Graph:
        """What the engine is built from (`BuiltEngine.graph`): its int8 source's graph, else
        the FP16 model where a strongly typed fp16 build takes it, else the ONNX."""
        graph = Graph.of_int8_source(self.int8_source)
        if graph is Graph.ONNX and self.fp16_route == "strong" and request.fp16_model is not None:
            return Graph.FP16_MODEL
        return graph

    def as_dict(self) -> dict[str, Any]:
        return {
            "int8Route": self.route,
            Key.INT8_SOURCE: self.int8_source,
            "fp16Route": self.fp16_route,
            "stronglyTyped": self.strongly_typed,
            "flags": {"tf32": self.tf32, "fp16": self.fp16, "int8": self.int8},
            "optimizationProfile": dict(zip(("min", "opt", "max"), self.profile, strict=True)),
            "calibrationBatch": self.calibration_batch,
            "maxWorkspaceSize": self.workspace,
            "hardwareCompatibility": self.hardware_compatibility,
            "strictTypeConstraints": self.strict,
            "calibratedFirst": self.calibrate_first,
            "builtWith": "polygraphy",
        }


def plan_build(request: BuildRequest, trt_version: str) -> BuildPlan:
    """The build's choices (module docstring); reads the ONNX model, never TensorRT."""
    refuse_removed(request, trt_version)
    precision, major = request.options.precision, trt_major(trt_version)
    route = resolve_route(request, trt_version) if precision == "int8" else None
    typed_fp16 = fp16_route(request, trt_version) if precision == "fp16" else None
    int8_source = None
    if route == "qdq":
        int8_source = "qdq"
    elif route == "cal_bin":
        cache = request.calibration_cache
        int8_source = "calibration-cache" if cache is not None and cache.exists() else "tensorfile"
    if precision == "int8":
        strongly_typed = route == "qdq" and major >= STRONGLY_TYPED_FROM
    elif precision == "fp16":
        strongly_typed = typed_fp16 == "strong"
    else:  # fp32: nothing to lower, a strongly typed network of the FP32 graph
        strongly_typed = major >= STRONGLY_TYPED_FROM
    model = request.onnx_path
    if route == "qdq" and request.qdq_model is not None:
        model = request.qdq_model
    elif typed_fp16 == "strong" and request.fp16_model is not None:
        model = request.fp16_model
    binding = onnx_bindings.read(model).input
    if len(binding.dims) != 3:
        raise UserError(f"{model}: input {binding.name} is not NHWC: dims {binding.dims}")
    notes: list[str] = []
    strict = request.options.strict_types
    if strict and strongly_typed:
        notes.append(
            "-s: a strongly typed network already runs every layer in the type its model "
            "gives it; no precision constraints to add"
        )
        strict = False
    batch = request.options.calibration_batch_size if route == "cal_bin" else None
    return BuildPlan(
        model=model,
        precision=request.options.precision,
        route=route,
        int8_source=int8_source,
        fp16_route=typed_fp16,
        strongly_typed=strongly_typed,
        tf32=request.options.precision != "fp32" and not strongly_typed,
        fp16=request.options.precision in ("fp16", "int8") and not strongly_typed,
        int8=request.options.precision == "int8" and not strongly_typed,
        input_name=binding.name,
        input_shape=(binding.dims[0], binding.dims[1], binding.dims[2]),
        profile=(1, request.options.max_batch_size, request.options.max_batch_size),
        calibration_batch=batch,
        workspace=request.options.max_workspace_size,
        timing_cache=request.timing_cache,
        hardware_compatibility=request.options.hardware_compatibility,
        strict=strict,
        calibrate_first=strict and int8_source == "tensorfile",
        notes=tuple(notes),
    )


def strict_set(plan: BuildPlan, cache: Path | None) -> layer_precision.StrictLayers | None:
    """The layers `-s` binds; for int8 from the scales in `cache` (which must exist by now)."""
    if not plan.strict:
        return None
    if plan.precision != "int8":
        return layer_precision.strict_layers(plan.model, plan.precision)
    if cache is None or not cache.exists():
        raise UserError("-s with int8 needs the calibration cache's tensor names; none was written")
    scaled = set(calibration_cache.read(cache).scales)
    return layer_precision.strict_layers(plan.model, "int8", scaled)


def parser_errors(trt: Any, model: Path) -> list[str]:
    """What NVIDIA's ONNX parser says of `model`, one line per error.

    Where Polygraphy falls short: `NetworkFromOnnxPath` logs each parser error
    and raises only "Could not parse ONNX correctly"
    (`polygraphy/backend/trt/util.py`, `check_onnx_parser_errors`), so after
    such a failure the model is parsed once more here for the errors
    themselves, to put them in the message the user reads.
    """
    from polygraphy.backend.trt import util as trt_util

    builder = trt.Builder(trt_util.get_trt_logger())
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, trt_util.get_trt_logger())
    parser.parse_from_file(str(model))
    errors = []
    for i in range(parser.num_errors):
        e = parser.get_error(i)
        errors.append(f"node {e.node()} ({e.node_operator()} {e.node_name()!r}): {e.desc()}")
    return errors


def build_failure(trt: Any, what: str, model: Path, exc: Exception) -> UserError:
    """The UserError of a failed build: the parser's own errors when it refused the model."""
    try:
        errors = parser_errors(trt, model)
    except Exception as probe:
        errors = [f"(the parser could not be asked again: {probe})"]
    said = f"NVIDIA's ONNX parser: {'; '.join(errors)}" if errors else str(exc)
    return UserError(f"{what} could not build the engine from {model}: {said}")


def network_loader(trt: Any, plan: BuildPlan, strict: layer_precision.StrictLayers | None) -> Any:
    network = NetworkFromOnnxPath(str(plan.model), strongly_typed=plan.strongly_typed or None)
    if strict is None:
        return network
    return PostprocessNetwork(
        network, func=lambda net: layer_precision.apply(trt, net, strict), name="strict_types"
    )


def _profile(plan: BuildPlan, batches: tuple[int, int, int]) -> Profile:
    dims = plan.input_shape
    low, opt, high = ((b, *dims) for b in batches)
    return Profile().add(plan.input_name, min=low, opt=opt, max=high)


def _calibration_profile(plan: BuildPlan) -> Any:
    """TensorRT calibrates at a profile's OPT shapes: the tensorfile's batch, set by hand."""
    batch = plan.calibration_batch or 1
    profile = _profile(plan, (batch, batch, batch))

    def set_profile(builder: Any, network: Any, config: Any) -> None:
        config.set_calibration_profile(profile.to_trt(builder, network))

    return set_profile


def config_arguments(trt: Any, plan: BuildPlan, *, calibrate_only: bool = False) -> dict[str, Any]:
    """The config step's arguments every backend on TensorRT's builder shares: Polygraphy's
    `_CreateConfigCommon`, which `CreateConfig` (adding precision flags and a calibrator)
    and TensorRT-RTX's `CreateConfigRTX` (adding compute capabilities) both extend."""
    levels = {"none": None, "ampere+": trt.HardwareCompatibilityLevel.AMPERE_PLUS}
    return dict(
        profiles=[_profile(plan, plan.profile)],
        precision_constraints="obey" if plan.strict and not calibrate_only else None,
        load_timing_cache=str(plan.timing_cache) if plan.timing_cache else None,
        memory_pool_limits={trt.MemoryPoolType.WORKSPACE: plan.workspace},
        hardware_compatibility_level=levels[plan.hardware_compatibility],
        # A build only to calibrate: its engine is discarded, so no time on tactics.
        builder_optimization_level=0 if calibrate_only else None,
    )


def config_loader(
    trt: Any, plan: BuildPlan, calibrator: Any, *, calibrate_only: bool = False
) -> Any:
    config = CreateConfig(
        tf32=plan.tf32,
        fp16=plan.fp16,
        int8=plan.int8,
        calibrator=calibrator,
        **config_arguments(trt, plan, calibrate_only=calibrate_only),
    )
    if calibrator is None:
        return config
    return PostprocessConfig(config, _calibration_profile(plan))


def engine_loader(network: Any, config: Any, plan: BuildPlan, *, save_timing: bool) -> Any:
    # The bytes, not EngineFromNetwork's deserialized engine: we write the file and
    # the verification loads it like any user would.
    return EngineBytesFromNetwork(
        network,
        config=config,
        save_timing_cache=str(plan.timing_cache) if plan.timing_cache and save_timing else None,
    )


@dataclass
class PreparedCache:
    path: Path | None
    calibrator: str
    record: dict[str, Any] = field(default_factory=dict)


def prepare_cache(plan: BuildPlan, request: BuildRequest, trt_version: str) -> PreparedCache:
    """cal.bin re-stamped for this TensorRT and checked against the model, or where to write one."""
    cache = request.calibration_cache
    if plan.int8_source != "calibration-cache":
        return PreparedCache(cache, DEFAULT_CALIBRATOR)
    assert cache is not None
    source = str(cache)
    current = calibration_cache.read(cache)
    calibration_cache.check_names(
        current, onnx_bindings.value_names(plan.model), plan.input_name, source
    )
    restamped = calibration_cache.restamp(current, trt_version, source)
    if restamped.note:
        log.warning("%s", restamped.note)
        calibration_cache.write(cache, restamped.cache)
    return PreparedCache(cache, restamped.calibrator, restamped.as_dict())


class TensorRTBuilder:
    """Builds the engine: `build(request)`; `backend.py` pairs it with the runner."""

    def build(self, request: BuildRequest) -> BuiltEngine:
        trt = tensorrt()
        plan = plan_build(request, str(trt.__version__))
        for note in plan.notes:
            log.info("%s", note)
        prepared = prepare_cache(plan, request, str(trt.__version__))
        feed = None
        if plan.route == "cal_bin":
            if plan.int8_source == "tensorfile":
                assert request.calibration_data is not None
                check_tensorfile(
                    request.calibration_data,
                    request.options.calibration_batches,
                    request.options.calibration_batch_size,
                    plan.input_shape,
                )
            feed = TensorfileFeed(
                plan.input_name,
                plan.input_shape,
                request.options.calibration_batch_size,
                request.options.calibration_batches,
                tensorfile=request.calibration_data if plan.int8_source == "tensorfile" else None,
                cache_source=str(request.calibration_cache),
            )
        cache_path = prepared.path or request.engine_path.with_name("cal.bin")
        timing = plan.timing_cache
        loaded = timing.stat().st_size if timing is not None and timing.exists() else 0
        started = time.perf_counter()
        if plan.calibrate_first:
            assert feed is not None
            self._run(trt, plan, feed, prepared.calibrator, cache_path, None, calibrate_only=True)
            feed = TensorfileFeed(  # the second build replays what the first one wrote
                plan.input_name, plan.input_shape, request.options.calibration_batch_size,
                request.options.calibration_batches, cache_source=str(cache_path),
            )  # fmt: skip
        strict = strict_set(plan, cache_path)
        serialized = self._run(trt, plan, feed, prepared.calibrator, cache_path, strict)
        seconds = time.perf_counter() - started
        request.engine_path.parent.mkdir(parents=True, exist_ok=True)
        request.engine_path.write_bytes(bytes(memoryview(serialized)))
        details: dict[str, Any] = {
            **plan.as_dict(),
            "builderSeconds": round(seconds, 3),
            "notes": list(plan.notes),
        }
        if strict is not None:
            details["strictLayers"] = strict.as_dict()
        if prepared.record:
            details["calibrationCache"] = prepared.record
        if timing is not None:
            saved = timing.stat().st_size if timing.exists() else 0
            details["timingCache"] = {"loadedBytes": loaded, "savedBytes": saved}
        return BuiltEngine(
            request.engine_path, FACTS.name, hardware.describe(), details,
            graph=plan.graph(request),
        )  # fmt: skip

    def _run(
        self,
        trt: Any,
        plan: BuildPlan,
        feed: TensorfileFeed | None,
        calibrator_class: str,
        cache: Path,
        strict: layer_precision.StrictLayers | None,
        *,
        calibrate_only: bool = False,
    ) -> Any:
        calibrator = (
            make_calibrator(trt, calibrator_class, feed, cache) if feed is not None else None
        )
        build = engine_loader(
            network_loader(trt, plan, strict),
            config_loader(trt, plan, calibrator, calibrate_only=calibrate_only),
            plan,
            save_timing=not calibrate_only,
        )
        try:
            serialized = build()
        except PolygraphyException as exc:
            raise build_failure(trt, "TensorRT", plan.model, exc) from exc
        finally:
            if calibrator is not None:
                calibrator.free()
        if feed is not None:
            feed.raise_if_failed()
        if not serialized:
            raise RuntimeError("TensorRT failed to build the engine (its log above says why)")
        return serialized
