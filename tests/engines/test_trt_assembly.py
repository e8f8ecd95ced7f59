"""The TensorRT build up to TensorRT itself: the plan, the layers `-s` binds, the Polygraphy loader
chain, the calibrator and its tensorfile. TensorRT cannot be installed here, so a stand-in
`tensorrt` module (tests/engines/fake_tensorrt.py) supplies the enums and base classes the
loaders are assembled from; nothing is built. `test_tensorrt.py` builds for real where
`import tensorrt` works.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from bodypose_exporter.calibration.calibration_cache import read as read_cache
from bodypose_exporter.calibration.tensorfile import TensorFileWriter
from bodypose_exporter.engines.base import BuildRequest
from bodypose_exporter.engines.trt import builder as trt_builder
from bodypose_exporter.engines.trt.args import TensorRTOptions
from bodypose_exporter.engines.trt.calibrator import (
    CalibrationFailedError,
    TensorfileFeed,
    check_tensorfile,
    make_calibrator,
)
from bodypose_exporter.engines.trt.precision import strict_layers
from bodypose_exporter.errors import UserError
from tests.conftest import SAMPLE_HEIGHT as HEIGHT
from tests.conftest import SAMPLE_WIDTH as WIDTH
from tests.engines import fake_tensorrt
from tests.engines.conftest import Calibrated
from tests.support.builds import engine_options

INPUT = "input_1:0"


@pytest.fixture
def fake_trt(monkeypatch: pytest.MonkeyPatch) -> Any:
    trt = fake_tensorrt.module()
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    return trt


_FILES = {f.name for f in dataclasses.fields(BuildRequest)}


def request(exported: Path, tmp_path: Path, precision: str, **extra: Any) -> BuildRequest:
    """`extra`: BuildRequest's files and EngineOptions' fields alike."""
    files = {k: v for k, v in extra.items() if k in _FILES}
    options = {k: v for k, v in extra.items() if k not in _FILES}
    return BuildRequest(
        options=engine_options(precision=precision, max_batch_size=4, **options),
        onnx_path=exported / "bpnet_model.onnx",
        engine_path=tmp_path / "e.engine",
        **files,
    )


# --- the plan: routes and flags -------------------------------------------------------------


def test_fp32_and_fp16_plans(exported: Path, tmp_path: Path) -> None:
    fp32 = trt_builder.plan_build(request(exported, tmp_path, "fp32"), "10.8.0.43")
    # strongly typed from TensorRT 10 on: the FP32 graph as it is, no flags, TF32 off
    assert (fp32.tf32, fp32.fp16, fp32.int8, fp32.strongly_typed) == (False, False, False, True)
    assert fp32.input_name == INPUT and fp32.input_shape == (HEIGHT, WIDTH, 3)
    assert fp32.profile == (1, 4, 4) and fp32.route is None
    legacy = trt_builder.plan_build(request(exported, tmp_path, "fp32"), "8.6.1")
    assert (legacy.tf32, legacy.strongly_typed) == (False, False)
    # no FP16 model given: the FP16 flag over the FP32 graph (TensorRT 10 still has it)
    fp16 = trt_builder.plan_build(request(exported, tmp_path, "fp16"), "10.8.0.43")
    assert (fp16.tf32, fp16.fp16, fp16.int8, fp16.fp16_route) == (True, True, False, "weak")


def test_fp16_from_the_fp16_model_is_strongly_typed(exported: Path, tmp_path: Path) -> None:
    model = tmp_path / "bpnet_model.fp16.onnx"
    model.write_bytes((exported / "bpnet_model.onnx").read_bytes())  # its bindings are the same
    for version in ("10.8.0.43", "11.0.0"):
        plan = trt_builder.plan_build(request(exported, tmp_path, "fp16", fp16_model=model),
                                      version)  # fmt: skip
        assert (plan.model, plan.fp16_route, plan.strongly_typed) == (model, "strong", True)
        assert (plan.tf32, plan.fp16, plan.int8) == (False, False, False)
    # -s asks for precision constraints: the weakly typed route, on TensorRT 10
    strict = request(exported, tmp_path, "fp16", fp16_model=model, strict_types=True)
    assert trt_builder.plan_build(strict, "10.8.0.43").fp16_route == "weak"


def test_the_tensorrt_11_routes_assemble_on_its_api_surface(
    exported: Path, calibrated: Calibrated, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trt = fake_tensorrt.module("11.0.0")
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    fp16_model = tmp_path / "bpnet_model.fp16.onnx"
    fp16_model.write_bytes((exported / "bpnet_model.onnx").read_bytes())
    for precision, extra in (("fp32", {}), ("fp16", {"fp16_model": fp16_model}),
                             ("int8", {"qdq_model": calibrated.qdq_model})):  # fmt: skip
        plan = trt_builder.plan_build(request(exported, tmp_path, precision, **extra), "11.0.0")
        network = trt_builder.network_loader(trt, plan, None)
        config = trt_builder.config_loader(trt, plan, None)
        assert plan.strongly_typed and network.strongly_typed is True
        assert (config.fp16, config.int8, config.tf32, config.calibrator) == (
            False, False, False, None,
        )  # fmt: skip
        assert not hasattr(trt.BuilderFlag, "FP16") and not hasattr(trt, "IInt8Calibrator")


@pytest.mark.parametrize(
    ("precision", "extra", "message"),
    [
        ("fp16", {}, "TensorRT 11.0.0 removed the weakly typed route (precision flags, "
         "calibrators, precision constraints): an fp16 engine is built from the FP16 model; "
         "pass --fp16_model <model>.fp16.onnx (bpnet-export --data_type fp16 publishes it)"),
        ("int8", {"int8_route": "cal_bin"}, "--int8_route cal_bin: TensorRT 11.0.0 removed the "
         "weakly typed route (precision flags, calibrators, precision constraints): an int8 "
         "engine is built from the QDQ model; pass --qdq_model and --int8_route qdq (or auto). "
         "cal.bin is still published for DeepStream and TAO on TensorRT 8 and 10"),
        ("fp32", {"strict_types": True}, "-s/--strict_type_constraints: TensorRT 11.0.0 removed "
         "the weakly typed route (precision flags, calibrators, precision constraints): a "
         "strongly typed network runs every layer in the type its model gives it; drop -s"),
    ],
    ids=["fp16-flag", "cal-bin", "strict"],
)  # fmt: skip
def test_tensorrt_11_refuses_the_removed_route_before_any_work(
    exported: Path, tmp_path: Path, precision: str, extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(UserError) as raised:
        trt_builder.plan_build(request(exported, tmp_path, precision, **extra), "11.0.0")
    assert str(raised.value) == message


def test_int8_defaults_to_the_strongly_typed_qdq_route_on_tensorrt_10(
    exported: Path, calibrated: Calibrated, tmp_path: Path
) -> None:
    both = request(
        exported, tmp_path, "int8",
        qdq_model=calibrated.qdq_model, calibration_cache=calibrated.cal_bin, strict_types=True,
    )  # fmt: skip
    plan = trt_builder.plan_build(both, "10.8.0.43")
    assert plan.route == "qdq" and plan.strongly_typed and plan.model == calibrated.qdq_model
    # no precision flags on a strongly typed network, and -s has nothing to add
    assert (plan.fp16, plan.int8, plan.tf32, plan.strict) == (False, False, False, False)
    assert plan.notes and "strongly typed" in plan.notes[0]
    # TensorRT 8 has no strongly typed networks: auto takes cal.bin
    legacy = trt_builder.plan_build(both, "8.6.1")
    assert legacy.route == "cal_bin" and legacy.int8_source == "calibration-cache"
    assert (legacy.fp16, legacy.int8, legacy.strongly_typed) == (True, True, False)
    cal_bin = (TensorRTOptions(int8_route="cal_bin"),)
    chosen = dataclasses.replace(
        both, options=dataclasses.replace(both.options, backend_options=cal_bin)
    )
    assert trt_builder.plan_build(chosen, "10.8.0.43").route == "cal_bin"


def test_int8_route_refusals_name_the_missing_input(exported: Path, tmp_path: Path) -> None:
    cases = {
        "qdq": "--int8_route qdq builds from the QDQ model: pass --qdq_model",
        "cal_bin": "--int8_route cal_bin needs an existing --cal_cache_file or a --cal_data_file "
        f"tensorfile; {tmp_path / 'none.bin'} does not exist",
        "auto": "an int8 TensorRT engine needs the QDQ model (--qdq_model), the calibration "
        "cache (--cal_cache_file cal.bin) or a calibration tensorfile (--cal_data_file)",
    }
    for route, message in cases.items():
        req = request(
            exported, tmp_path, "int8", int8_route=route, calibration_cache=tmp_path / "none.bin"
        )
        with pytest.raises(UserError) as raised:
            trt_builder.plan_build(req, "10.8.0.43")
        assert str(raised.value) == message


# --- -s: convolutions only, from the ONNX graph ---------------------------------------------


def test_strict_binds_only_convolutions(exported: Path, calibrated: Calibrated) -> None:
    model = exported / "bpnet_model.onnx"
    graph = onnx.load(str(model)).graph
    convs = {n.name for n in graph.node if n.op_type in ("Conv", "ConvTranspose")}
    others = {n.op_type for n in graph.node} - {"Conv", "ConvTranspose"}
    assert {"Concat", "Relu"} & others  # the kinds the old -s forced to INT8 are in the model
    fp16 = strict_layers(model, "fp16")
    assert set(fp16.outputs) == convs
    scaled = set(read_cache(calibrated.cal_bin).scales)
    int8 = strict_layers(model, "int8", scaled)
    assert set(int8.outputs) <= convs and int8.outputs
    by_name = {n.name: n for n in graph.node}
    for name in int8.outputs:
        assert by_name[name].input[0] in scaled and by_name[name].output[0] in scaled
    assert set(int8.outputs) | set(int8.skipped_without_scales) == convs
    assert strict_layers(model, "fp32").outputs == {}


def test_strict_with_a_tensorfile_calibrates_first_and_reads_the_written_cache(
    exported: Path, calibrated: Calibrated, tmp_path: Path
) -> None:
    plan = trt_builder.plan_build(
        request(
            exported, tmp_path, "int8", strict_types=True,
            calibration_cache=tmp_path / "cal.bin", calibration_data=tmp_path / "x.tensorfile",
        ),
        "10.8.0.43",
    )  # fmt: skip
    assert plan.int8_source == "tensorfile" and plan.calibrate_first and plan.strict
    # before calibration there are no names to constrain: said, not silently nothing
    with pytest.raises(UserError, match="needs the calibration cache's tensor names"):
        trt_builder.strict_set(plan, tmp_path / "cal.bin")
    # once TensorRT wrote the cache (here: ours, the same format), its names are used
    written = tmp_path / "cal.bin"
    written.write_bytes(calibrated.cal_bin.read_bytes())
    layers = trt_builder.strict_set(plan, written)
    assert layers is not None and layers.outputs


# --- the Polygraphy loader chain --------------------------------------------------------------


def test_polygraphy_chain_for_the_cal_bin_route(
    exported: Path, calibrated: Calibrated, tmp_path: Path, fake_trt: Any
) -> None:
    from polygraphy.backend.trt import (
        CreateConfig,
        EngineBytesFromNetwork,
        NetworkFromOnnxPath,
        PostprocessConfig,
        PostprocessNetwork,
    )

    timing = tmp_path / "t.cache"
    req = request(
        exported, tmp_path, "int8", calibration_cache=calibrated.cal_bin, strict_types=True,
        timing_cache=timing, hardware_compatibility="ampere+", max_workspace_size=1 << 30,
        calibration_batch_size=2, int8_route="cal_bin",
    )  # fmt: skip
    plan = trt_builder.plan_build(req, fake_trt.__version__)
    strict = trt_builder.strict_set(plan, calibrated.cal_bin)
    feed = TensorfileFeed(INPUT, (HEIGHT, WIDTH, 3), 2, 3, cache_source="cal.bin")
    calibrator = make_calibrator(fake_trt, "IInt8MinMaxCalibrator", feed, calibrated.cal_bin)
    network = trt_builder.network_loader(fake_trt, plan, strict)
    config = trt_builder.config_loader(fake_trt, plan, calibrator)
    engine = trt_builder.engine_loader(network, config, plan, save_timing=True)

    assert isinstance(engine, EngineBytesFromNetwork)
    assert engine.timing_cache_path == str(timing)
    assert isinstance(network, PostprocessNetwork)  # -s binds layers after parsing
    parsed = network._network
    assert isinstance(parsed, NetworkFromOnnxPath)
    assert parsed.path == str(exported / "bpnet_model.onnx") and not parsed.strongly_typed
    assert isinstance(config, PostprocessConfig)  # the calibration profile, set by hand
    created = config._config
    assert isinstance(created, CreateConfig)
    assert (created.tf32, created.fp16, created.int8) == (True, True, True)
    assert created.precision_constraints == "obey"
    assert created.calibrator is calibrator
    assert created.memory_pool_limits == {fake_trt.MemoryPoolType.WORKSPACE: 1 << 30}
    assert created.hardware_compatibility_level == fake_trt.HardwareCompatibilityLevel.AMPERE_PLUS
    assert created.timing_cache_path == str(timing)
    (profile,) = created.profiles
    shapes = profile[INPUT]
    assert (tuple(shapes.min), tuple(shapes.opt), tuple(shapes.max)) == (
        (1, HEIGHT, WIDTH, 3), (4, HEIGHT, WIDTH, 3), (4, HEIGHT, WIDTH, 3),
    )  # fmt: skip
    # the calibrator is of the class the cache's header names, built on TensorRT's
    assert isinstance(calibrator, fake_trt.IInt8MinMaxCalibrator) and calibrator.base_initialised
    assert calibrator.read_calibration_cache() == calibrated.cal_bin.read_bytes()


def test_polygraphy_chain_for_the_strongly_typed_qdq_route(
    exported: Path, calibrated: Calibrated, tmp_path: Path, fake_trt: Any
) -> None:
    req = request(exported, tmp_path, "int8", qdq_model=calibrated.qdq_model)
    plan = trt_builder.plan_build(req, fake_trt.__version__)
    network = trt_builder.network_loader(fake_trt, plan, None)
    config = trt_builder.config_loader(fake_trt, plan, None)
    assert network.path == str(calibrated.qdq_model) and network.strongly_typed is True
    assert (config.fp16, config.int8, config.tf32, config.calibrator) == (False, False, False, None)
    assert config.hardware_compatibility_level is None and config.precision_constraints is None


def test_a_calibration_only_build_spends_no_time_on_tactics(
    exported: Path, tmp_path: Path, fake_trt: Any
) -> None:
    req = request(
        exported, tmp_path, "int8", strict_types=True, int8_route="cal_bin",
        calibration_data=tmp_path / "x.tensorfile",
    )  # fmt: skip
    plan = trt_builder.plan_build(req, fake_trt.__version__)
    feed = TensorfileFeed(INPUT, (HEIGHT, WIDTH, 3), 1, 1, tensorfile=tmp_path / "x.tensorfile")
    calibrator = make_calibrator(fake_trt, "IInt8EntropyCalibrator2", feed, tmp_path / "c.bin")
    config = trt_builder.config_loader(fake_trt, plan, calibrator, calibrate_only=True)
    assert config._config.builder_optimization_level == 0
    assert config._config.precision_constraints is None  # constraints come in the second build


# --- the tensorfile, checked before the build; errors carried out of get_batch ----------------


def write_tensorfile(path: Path, shapes: list[tuple[int, ...]]) -> Path:
    with TensorFileWriter(path) as writer:
        for shape in shapes:
            if writer.shape is not None and shape != writer.shape:
                writer.shape = shape  # a record of another shape, as TAO's unenforced writer allows
            writer.write(np.zeros(shape, dtype=np.float32))
    return path


def test_a_short_record_is_refused_before_the_build(tmp_path: Path) -> None:
    good = (2, HEIGHT, WIDTH, 3)
    short = write_tensorfile(tmp_path / "short.tensorfile", [good, (1, HEIGHT, WIDTH, 3), good])
    with pytest.raises(UserError) as raised:
        check_tensorfile(short, 3, 2, (HEIGHT, WIDTH, 3))
    assert str(raised.value) == (
        f"--cal_data_file {short}: record 1 holds an array of shape (1, {HEIGHT}, {WIDTH}, 3), "
        f"not at least --batch_size 2 images of {HEIGHT}x{WIDTH}x3: the calibration would stop "
        "there; regenerate the tensorfile"
    )
    other = write_tensorfile(tmp_path / "other.tensorfile", [(2, 288, 384, 3)] * 3)
    with pytest.raises(UserError, match=r"holds batches of shape \(2, 288, 384, 3\), but the"):
        check_tensorfile(other, 3, 2, (HEIGHT, WIDTH, 3))
    few = write_tensorfile(tmp_path / "few.tensorfile", [good])
    with pytest.raises(UserError, match="holds 1 batches, fewer than --batches 3"):
        check_tensorfile(few, 3, 2, (HEIGHT, WIDTH, 3))
    check_tensorfile(
        write_tensorfile(tmp_path / "ok.tensorfile", [good] * 3), 3, 2, (HEIGHT, WIDTH, 3)
    )


def test_an_error_inside_get_batch_fails_the_build_with_its_reason(
    tmp_path: Path, fake_trt: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from polygraphy.backend.trt import util as trt_util

    # the one GPU step of get_batch (copying the batch to the device), replaced
    monkeypatch.setattr(trt_util, "_get_array_on_gpu", lambda array, name, buffers: 4096)
    good = (1, HEIGHT, WIDTH, 3)
    path = write_tensorfile(tmp_path / "t.tensorfile", [good, good])
    feed = TensorfileFeed(INPUT, (HEIGHT, WIDTH, 3), 1, 3, tensorfile=path)  # asks for 3 of 2
    calibrator = make_calibrator(fake_trt, "IInt8EntropyCalibrator2", feed, tmp_path / "c.bin")
    assert calibrator.get_batch([INPUT]) == [4096]
    assert calibrator.get_batch([INPUT]) == [4096]
    # the third record is missing: TensorRT's wrapper would swallow this exception...
    with pytest.raises(UserError, match="batch 2 is missing"):
        calibrator.get_batch([INPUT])
    # ...so the feed kept it, and the build fails with it once TensorRT returns
    with pytest.raises(CalibrationFailedError) as raised:
        feed.raise_if_failed()
    assert (
        str(raised.value) == f"INT8 calibration failed: --cal_data_file {path}: batch 2 is missing"
    )


def test_a_cache_tensorrt_ignores_fails_the_build_instead_of_an_uncalibrated_engine(
    tmp_path: Path,
) -> None:
    feed = TensorfileFeed(INPUT, (HEIGHT, WIDTH, 3), 1, 4, cache_source="s3://b/cal.bin")
    batches: Iterator[Any] = iter(feed)
    with pytest.raises(CalibrationFailedError):
        next(batches)
    with pytest.raises(CalibrationFailedError) as raised:
        feed.raise_if_failed()
    assert str(raised.value) == (
        "INT8 calibration failed: TensorRT asked for calibration data, so it did not accept "
        "the cache s3://b/cal.bin (its header or its tensor names do not match this network); "
        "pass --cal_data_file to calibrate, or --int8_route qdq"
    )


def test_calibration_stopped_early_is_a_failure(tmp_path: Path) -> None:
    good = (1, HEIGHT, WIDTH, 3)
    path = write_tensorfile(tmp_path / "t.tensorfile", [good, good, good])
    feed = TensorfileFeed(INPUT, (HEIGHT, WIDTH, 3), 1, 3, tensorfile=path)
    batches = iter(feed)
    next(batches)  # TensorRT took one batch, then Polygraphy refused the next (returns None)
    with pytest.raises(CalibrationFailedError) as raised:
        feed.raise_if_failed()
    assert str(raised.value).startswith("INT8 calibration stopped after 1 of 3 batches")
