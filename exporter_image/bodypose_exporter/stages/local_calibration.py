"""INT8 calibration on local files: FP32 ONNX + images or tensorfile -> cal.bin, QDQ model, ranges.

The local driver of the calibration stage: `run_calibration(onnx_path,
CalibrationOptions(...), out_dir)`, local paths in, local files out; what
benchmarks and tests call, and what `stages.calibrate` (the stage on paths
or s3:// URIs, for `bpnet-export --data_type int8` and `bpnet calibrate`)
runs on its local copies. `calibration/` holds the algorithms only: images,
preprocessing, tensorfile, histograms, thresholds, cache format, QDQ,
agreement.

The checks both run, written once here: `check_batches` (--batches and
--batch_size), `choose_source` (which data, in TAO's order, and "int8 needs
calibration data" when there is none), `check_tensorfile` and
`refuse_too_few` (the image count). `stages.calibrate` runs them in its
preflight, before the model is even fetched; `run_calibration` runs them
again on the local files, before the first forward pass.

What it does, following `tao model bpnet export` (NVIDIA/tao_tensorflow1_backend
`nvidia_tao_tf1/cv/bpnet/scripts/export.py` and `cv/core/export/base_exporter.py`):

1. `--cal_cache_file` (default `./cal.bin`) exists: calibration is skipped
   (TAO's calibrator reads the cache instead of calibrating); the cache is
   still read and checked against the model's tensor names, so a malformed or
   foreign cache fails here rather than in the engine build.
2. Otherwise the data: `--cal_data_file` if it exists (checked against -d,
   `--batches` and `--batch_size` before any work); else `--cal_image_dir`,
   refused before any work if it holds fewer than batches x batch_size
   images, and streamed through the preprocessing while the batches are also
   written to `--cal_data_file` (if one is named) for reuse. The tensorfile
   stays where `--cal_data_file` names it (it is large: batches x batch_size
   x H x W x 3 float32).
3. Streaming range collection (`calibration.collect`), per-tensor amax by the
   chosen method (`calibration.thresholds`), `cal.bin` in TensorRT's format
   (`calibration.calibration_cache`), and every method's ranges in
   `calibration.json`.
4. The QDQ model from the same ranges (`calibration.qdq`), and its agreement
   with the FP32 model on held-back images (`calibration.agreement`): the
   images that follow the calibration images in the seeded order.

Every problem a user can fix is raised as `UserError` with the flag to change.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import onnx
from google.protobuf.message import DecodeError

from bodypose_exporter.calibration import calibration_cache
from bodypose_exporter.calibration.agreement import Agreement, compare
from bodypose_exporter.calibration.batches import Batch, ImageBatches, ImagesExhaustedError
from bodypose_exporter.calibration.calibration_cache import CalibrationCache
from bodypose_exporter.calibration.collect import (
    Collected,
    RangeCollector,
    collect,
    input_dims,
    model_input,
    prefetch,
)
from bodypose_exporter.calibration.histogram import AbsHistogram
from bodypose_exporter.calibration.images import IMAGE_SUFFIXES, ImageListing, list_images
from bodypose_exporter.calibration.preprocess import Normalization
from bodypose_exporter.calibration.qdq import write_qdq_model
from bodypose_exporter.calibration.tensorfile import (
    TensorFileWriter,
    check_matches,
    inspect,
    read_batches,
)
from bodypose_exporter.calibration.tensors import CalibrationTensors, select_tensors
from bodypose_exporter.calibration.thresholds import DEFAULT_PERCENTILE, METHODS, choose_amax
from bodypose_exporter.engines.ort import hardware as cpu_hardware
from bodypose_exporter.errors import UserError
from bodypose_exporter.manifest import Kind, file_name

log = logging.getLogger(__name__)

#: The refusal's wording, the same as the CRD's rule on the resource's calibration fields.
TOO_FEW_IMAGES = "The images must number at least batches x batchSize"
NO_CALIBRATION_DATA = (
    "--data_type int8 needs calibration data: --cal_image_dir, an existing "
    "--cal_data_file, or an existing --cal_cache_file"
)
RANGES_NAME = file_name(Kind.CALIBRATION_RANGES)


@dataclass(frozen=True)
class CalibrationOptions:
    """What `bpnet-export --data_type int8` passes; flag names in the comments."""

    cache_file: Path  # --cal_cache_file (TAO default ./cal.bin)
    batches: int  # --batches
    batch_size: int  # --batch_size
    input_hw: tuple[int, int]  # -d H,W,3
    image_dir: Path | None = None  # --cal_image_dir
    data_file: Path | None = None  # --cal_data_file
    method: str = "entropy"  # entropy | minmax | percentile
    percentile: float = DEFAULT_PERCENTILE
    held_back: int = 16  # images after the calibration set, for the QDQ agreement figures
    normalization: Normalization = field(default_factory=Normalization)
    write_qdq: bool = True
    seed: int = 0  # order in which images are drawn from the directory
    workers: int | None = None  # decoding threads (default: one per core, at most 4)
    trt_version: str | None = None  # cal.bin header; default: installed TensorRT, else 10.x
    progress: bool = True


@dataclass(frozen=True)
class CalibrationResult:
    cache_file: Path
    cache_reused: bool
    method: str
    tensors: int  # entries in cal.bin
    measured_tensors: int  # tensors histogrammed (the others share a measured range)
    images: int  # images calibrated on (0 when the cache was reused)
    batches: int
    images_per_second: float
    tensorfile: Path | None
    tensorfile_written: bool
    qdq_model: Path | None
    ranges_file: Path | None
    corrupt_images: tuple[str, ...]
    ignored_files: int
    agreement: Agreement | None
    seconds: dict[str, float]
    #: The held-back images the agreement was measured on, preprocessed (N x H x W x 3):
    #: the export verifies engines on these (real images exercise the ranges).
    held_back: tuple[Batch, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """For the manifest: paths as strings, figures as numbers."""
        return {
            "cacheFile": str(self.cache_file),
            "cacheReused": self.cache_reused,
            "method": self.method,
            "tensors": self.tensors,
            "measuredTensors": self.measured_tensors,
            "images": self.images,
            "batches": self.batches,
            "imagesPerSecond": round(self.images_per_second, 3),
            "tensorfile": str(self.tensorfile) if self.tensorfile else None,
            "tensorfileWritten": self.tensorfile_written,
            "qdqModel": str(self.qdq_model) if self.qdq_model else None,
            "rangesFile": str(self.ranges_file) if self.ranges_file else None,
            "corruptImages": list(self.corrupt_images),
            "ignoredFiles": self.ignored_files,
            "agreement": self.agreement.as_dict() if self.agreement else None,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


def summary_line(result: CalibrationResult) -> str:
    if result.cache_reused:
        head = f"INT8 calibration skipped: reused {result.cache_file} ({result.tensors} tensors)"
    else:
        head = (
            f"INT8 calibration ({result.method}): {result.images} images in {result.batches} "
            f"batches, {result.seconds.get('calibrate', 0.0):.1f} s "
            f"({result.images_per_second:.2f} img/s); {result.tensors} tensors "
            f"({result.measured_tensors} measured) -> {result.cache_file}"
        )
    parts = [head]
    if result.corrupt_images:
        parts.append(f"{len(result.corrupt_images)} corrupt images skipped")
    if result.ignored_files:
        parts.append(f"{result.ignored_files} non-image files ignored")
    if result.tensorfile_written:
        parts.append(f"tensorfile written to {result.tensorfile}")
    return "; ".join(parts)


# --- the checks: run by stages.calibrate's preflight and again by run_calibration ---


class CalibrationSource(StrEnum):
    """The data calibration uses, in TAO's order of preference (`choose_source`)."""

    CACHE = "cache"  # --cal_cache_file exists: reused, nothing calibrated
    TENSORFILE = "tensorfile"  # --cal_data_file exists: its batches
    IMAGES = "images"  # --cal_image_dir (its batches also written to --cal_data_file, if named)


class Existing(Protocol):
    """A file that may be there: a local `Path`, or a `storage.location.Location`."""

    def exists(self) -> bool: ...


def check_batches(batches: int, batch_size: int) -> None:
    if batches < 1:
        raise UserError(f"--batches must be at least 1, got {batches}")
    if batch_size < 1:
        raise UserError(f"--batch_size must be at least 1, got {batch_size}")


def choose_source(
    cache_file: Existing, data_file: Existing | None, has_image_dir: bool
) -> CalibrationSource:
    """Which data calibration uses; UserError when there is none. Asks for the data file
    only when there is no cache (each may be an S3 request)."""
    if cache_file.exists():
        return CalibrationSource.CACHE
    if data_file is not None and data_file.exists():
        return CalibrationSource.TENSORFILE
    if not has_image_dir:
        raise UserError(NO_CALIBRATION_DATA)
    return CalibrationSource.IMAGES


def check_tensorfile(path: Path, batches: int, batch_size: int, input_hw: tuple[int, int]) -> None:
    """An existing --cal_data_file can feed `batches` x `batch_size` inputs of -d's size."""
    check_matches(inspect(path), batches, batch_size, input_hw)


def refuse_too_few(where: str, found: int, ignored: int, batches: int, batch_size: int) -> None:
    """The refusal when `where` (a directory or s3:// prefix) holds too few images."""
    need = batches * batch_size
    if found >= need:
        return
    kinds = ", ".join(IMAGE_SUFFIXES)
    holds = f"holds no images ({kinds})" if found == 0 else f"holds {found} images ({kinds})"
    extra = f"; {ignored} other files were ignored" if ignored else ""
    raise UserError(
        f"{TOO_FEW_IMAGES}: --cal_image_dir {where} {holds}, fewer than --batches {batches} x "
        f"--batch_size {batch_size} = {need}{extra}"
    )


def is_image(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_SUFFIXES


def log_ignored(where: str, ignored: Sequence[str]) -> None:
    """The non-image files of --cal_image_dir, a directory or an s3:// prefix alike."""
    if ignored:
        names = ", ".join(ignored[:5])
        more = ", ..." if len(ignored) > 5 else ""
        log.warning(
            "ignored %d files in %s that are not .jpg/.jpeg/.png: %s%s",
            len(ignored),
            where,
            names,
            more,
        )


def _validate(options: CalibrationOptions) -> None:
    check_batches(options.batches, options.batch_size)
    if options.method not in METHODS:
        raise UserError(f"calibration method {options.method!r} is not one of {', '.join(METHODS)}")
    if not 0 < options.percentile <= 100:
        raise UserError(f"percentile must be in (0, 100], got {options.percentile}")
    if options.held_back < 0:
        raise UserError(f"held-back images must be 0 or more, got {options.held_back}")
    height, width = options.input_hw
    if height < 1 or width < 1:
        raise UserError(f"-d must give a positive height and width, got {height},{width}")


def _load_model(onnx_path: Path) -> onnx.ModelProto:
    try:
        return onnx.load(str(onnx_path))
    except (OSError, ValueError, DecodeError) as exc:
        raise UserError(f"{onnx_path} is not a readable ONNX model: {exc}") from exc


def _check_model(model: onnx.ModelProto, input_hw: tuple[int, int]) -> str:
    value = model_input(model)
    dims = input_dims(value)
    height, width = input_hw
    wrong_size = any(
        isinstance(got, int) and got != want
        for got, want in zip(dims[1:3], (height, width), strict=False)
    )
    if len(dims) != 4 or dims[3] != 3 or wrong_size:
        raise UserError(
            f"the ONNX model's input {value.name} has shape {dims}, but -d {height},{width},3 "
            "was given (NHWC: height, width, channels)"
        )
    return value.name


def _check_data(
    source: CalibrationSource, listing: ImageListing | None, options: CalibrationOptions
) -> None:
    """The chosen data can feed --batches x --batch_size: a tensorfile's shape, the image count."""
    if source is CalibrationSource.TENSORFILE:
        assert options.data_file is not None
        check_tensorfile(options.data_file, options.batches, options.batch_size, options.input_hw)
    elif source is CalibrationSource.IMAGES:
        assert listing is not None
        refuse_too_few(
            str(listing.directory),
            len(listing.images),
            len(listing.ignored),
            options.batches,
            options.batch_size,
        )


def _check_cache(cache: CalibrationCache, tensors: CalibrationTensors, path: Path) -> None:
    known = set(tensors.names)
    matching = [name for name in cache.scales if name in known]
    if not matching:
        example = next(iter(cache.scales))
        raise UserError(
            f"--cal_cache_file {path} holds scales for none of this model's tensors (its first "
            f"is {example!r}; this model's input is {tensors.names[0]!r}): it was made for "
            "another model; delete it to calibrate again"
        )
    missing = [name for name in tensors.names if name not in cache.scales]
    if missing:
        log.warning(
            "%s has no scale for %d of the model's %d tensors (e.g. %s): TensorRT runs the "
            "layers that touch them in higher precision",
            path,
            len(missing),
            len(tensors.names),
            missing[0],
        )


# --- the local driver ---


@contextmanager
def _timed(seconds: dict[str, float], step: str) -> Iterator[None]:
    """`seconds[step]`: how long the block took (not recorded when it fails)."""
    started = time.perf_counter()
    yield
    seconds[step] = time.perf_counter() - started


def run_calibration(
    onnx_path: Path, options: CalibrationOptions, out_dir: Path
) -> CalibrationResult:
    """Calibrate `onnx_path` (FP32, NHWC input) and write cal.bin, the QDQ model and figures.

    Checks that need no computation (options, model input, cache format,
    tensorfile shape, image count) all come before the first forward pass.
    """
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    _validate(options)
    model = _load_model(onnx_path)
    _check_model(model, options.input_hw)
    tensors = select_tensors(model)
    # Not held through the forward passes: 64 MB of peak at 320x448 (the collector loads
    # its own copy and drops it once its session is built, calibration/session_memory.py).
    del model
    listing: ImageListing | None = None
    if options.image_dir is not None:
        listing = list_images(options.image_dir, options.seed)
        log_ignored(str(listing.directory), [p.name for p in listing.ignored])

    with ExitStack() as stack:
        source = choose_source(options.cache_file, options.data_file, listing is not None)
        _check_data(source, listing, options)
        images: ImageBatches | None = None
        if source is CalibrationSource.IMAGES:
            assert listing is not None
            images = stack.enter_context(_image_batches(listing.images, options))
        collected: Collected | None = None
        if source is CalibrationSource.CACHE:
            cache = _reuse_cache(options, tensors)
            amax = cache.amax()
        else:
            collected = _collect(onnx_path, tensors, listing, images, options, seconds)
            with _timed(seconds, "ranges"):
                amax, cache = _write_ranges(collected, tensors, options, out_dir)
        qdq_path, agreement, held_back = _write_qdq(
            onnx_path, amax, listing, images, options, out_dir, seconds
        )
        corrupt = list(images.stats.corrupt) if images is not None else []

    seconds["total"] = time.perf_counter() - started
    result = replace(
        _result(options, source, cache, tensors, collected, listing, corrupt, out_dir, seconds),
        qdq_model=qdq_path,
        agreement=agreement,
        held_back=tuple(held_back),
    )
    log.info("%s", summary_line(result))
    return result


def _result(
    options: CalibrationOptions,
    source: CalibrationSource,
    cache: CalibrationCache,
    tensors: CalibrationTensors,
    collected: Collected | None,
    listing: ImageListing | None,
    corrupt: list[tuple[Path, str]],
    out_dir: Path,
    seconds: dict[str, float],
) -> CalibrationResult:
    """What was calibrated (or reused), without the QDQ model's part (`_write_qdq`'s)."""
    return CalibrationResult(
        cache_file=options.cache_file,
        cache_reused=source is CalibrationSource.CACHE,
        method=options.method,
        tensors=len(cache.scales),
        measured_tensors=len(tensors.measured),
        images=collected.images if collected else 0,
        batches=collected.batches if collected else 0,
        images_per_second=collected.images_per_second if collected else 0.0,
        tensorfile=options.data_file if collected else None,
        tensorfile_written=source is CalibrationSource.IMAGES and options.data_file is not None,
        qdq_model=None,
        ranges_file=out_dir / RANGES_NAME if collected else None,
        corrupt_images=tuple(p.name for p, _ in corrupt),
        ignored_files=len(listing.ignored) if listing else 0,
        agreement=None,
        seconds=seconds,
    )


def _image_batches(paths: Sequence[Path], options: CalibrationOptions) -> ImageBatches:
    return ImageBatches(
        paths, options.batch_size, options.input_hw, options.normalization, options.workers
    )


def _reuse_cache(options: CalibrationOptions, tensors: CalibrationTensors) -> CalibrationCache:
    cache = calibration_cache.read(options.cache_file)
    _check_cache(cache, tensors, options.cache_file)
    log.info(
        "--cal_cache_file %s exists (%d tensors, %s): calibration skipped",
        options.cache_file,
        len(cache.scales),
        cache.header,
    )
    return cache


def _collect(
    onnx_path: Path,
    tensors: CalibrationTensors,
    listing: ImageListing | None,
    images: ImageBatches | None,
    options: CalibrationOptions,
    seconds: dict[str, float],
) -> Collected:
    """The forward passes over the calibration batches: every measured tensor's histogram."""
    need = options.batches * options.batch_size
    with ExitStack() as stack:
        batches = _calibration_batches(images, options, stack)
        with _timed(seconds, "session"):
            collector = stack.enter_context(RangeCollector(_load_model(onnx_path), tensors))
        try:
            collected = collect(collector, batches, need, options.progress)
        except ImagesExhaustedError as exc:
            assert listing is not None and images is not None
            message = _exhausted_message(listing, exc.produced, images.stats.corrupt, need)
            raise UserError(message) from exc
        seconds["calibrate"] = collected.seconds
    return collected


def _calibration_batches(
    images: ImageBatches | None, options: CalibrationOptions, stack: ExitStack
) -> Iterator[Batch]:
    """The tensorfile's batches, or the images' (written to --cal_data_file as they pass)."""
    if images is None:
        assert options.data_file is not None
        log.info("calibrating from the tensorfile %s", options.data_file)
        return prefetch(read_batches(options.data_file, options.batches, options.batch_size))
    batches = images.batches(options.batches)
    if options.data_file is None:
        return batches
    # Closed (and renamed into place) as soon as the batches are through,
    # whatever happens to the QDQ model afterwards.
    writer = stack.enter_context(TensorFileWriter(options.data_file))
    return _tee(batches, writer)


def _tee(batches: Iterator[Batch], writer: TensorFileWriter) -> Iterator[Batch]:
    for batch in batches:
        writer.write(batch)
        yield batch


def _exhausted_message(
    listing: ImageListing, usable: int, corrupt: list[tuple[Path, str]], need: int
) -> str:
    shown = "; ".join(f"{p.name}: {why}" for p, why in corrupt[:5])
    more = f"; and {len(corrupt) - 5} more" if len(corrupt) > 5 else ""
    return (
        f"{TOO_FEW_IMAGES}: only {usable} of the {len(listing.images)} images in "
        f"--cal_image_dir {listing.directory} could be used, {need} are needed; "
        f"{len(corrupt)} were skipped as corrupt ({shown}{more})"
    )


def _write_ranges(
    collected: Collected, tensors: CalibrationTensors, options: CalibrationOptions, out_dir: Path
) -> tuple[dict[str, float], CalibrationCache]:
    """Each tensor's amax by the chosen method, written as cal.bin; every method's ranges in
    calibration.json."""
    measured = {
        name: choose_amax(hist, options.method, options.percentile)
        for name, hist in collected.histograms.items()
    }
    amax = {name: measured[tensors.source(name)] for name in tensors.names}
    out_dir.mkdir(parents=True, exist_ok=True)
    record = _ranges_record(collected.histograms, tensors, options)
    (out_dir / RANGES_NAME).write_text(json.dumps(record, indent=1))
    cache = CalibrationCache.from_amax(amax, options.trt_version)
    calibration_cache.write(options.cache_file, cache)
    return amax, cache


def _ranges_record(
    histograms: dict[str, AbsHistogram], tensors: CalibrationTensors, options: CalibrationOptions
) -> dict[str, Any]:
    measured = {}
    for name, hist in histograms.items():
        measured[name] = {
            "histogramRange": hist.range,
            "amax": {m: choose_amax(hist, m, options.percentile) for m in METHODS},
        }
    return {
        "method": options.method,
        "percentile": options.percentile,
        "bins": 2048,
        "measured": measured,
        "sharedRange": {
            name: tensors.source(name) for name in tensors.names if name in tensors.alias
        },
    }


def _write_qdq(
    onnx_path: Path,
    amax: dict[str, float],
    listing: ImageListing | None,
    images: ImageBatches | None,
    options: CalibrationOptions,
    out_dir: Path,
    seconds: dict[str, float],
) -> tuple[Path | None, Agreement | None, list[Batch]]:
    """The QDQ model from the ranges, how it agrees with FP32 on held-back images, those."""
    if not options.write_qdq:
        return None, None, []
    with _timed(seconds, "qdq"):
        out_dir.mkdir(parents=True, exist_ok=True)
        qdq_path = out_dir / f"{onnx_path.stem}_int8_qdq.onnx"
        write_qdq_model(onnx_path, amax, qdq_path)
    if options.held_back <= 0 or listing is None:
        return qdq_path, None, []
    agreement: Agreement | None = None
    with _timed(seconds, "agreement"):
        held_back = _held_back(listing, images, options)
        if held_back:
            agreement = compare(onnx_path, qdq_path, held_back, cpu=_this_cpu())
            log.info("%s", agreement.summary())
        else:
            log.warning("no images left after the calibration set: no QDQ agreement figures")
    return qdq_path, agreement, held_back


def _held_back(
    listing: ImageListing, images: ImageBatches | None, options: CalibrationOptions
) -> list[Batch]:
    if images is not None:  # continue the calibration stream: never overlaps it
        return images.remaining(options.held_back)
    need = options.batches * options.batch_size
    with _image_batches(listing.images[need:], options) as later:
        return later.remaining(options.held_back)


def _this_cpu() -> str:
    """`x86_64 x86-avx2 (AMD EPYC)`: the machine the agreement figures were measured on."""
    cpu = cpu_hardware.describe()
    return f"{cpu['architecture']} {cpu['int8InstructionSet']} ({cpu['cpuModel']})"
