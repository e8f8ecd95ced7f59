"""The INT8 calibration stage: FP32 ONNX + images or tensorfile -> cal.bin, QDQ model, ranges.

The one owner of calibration as a stage (`calibration/` holds the algorithms
only: images, preprocessing, tensorfile, histograms, thresholds, cache
format, QDQ, agreement). Two entry points, one for each side of the files:

- `run_calibration(onnx_path, CalibrationOptions(...), out_dir)`: local
  paths in, local files out; what benchmarks and tests call;
- `preflight` then `calibrate`: what `bpnet-export --data_type int8` (and so
  the export Job) calls, and `run_calibrate_stage` (`bpnet calibrate`, the
  same on an exported ONNX model), with each location a path or
  an s3:// URI: existing objects are downloaded, files made here uploaded to
  the URI named, exactly as local paths would be written.

What it does, following `tao model bpnet export` (NVIDIA/tao_tensorflow1_backend
`nvidia_tao_tf1/cv/bpnet/scripts/export.py` and `cv/core/export/base_exporter.py`):

1. `--cal_cache_file` (default `./cal.bin`) exists: calibration is skipped
   (TAO's calibrator reads the cache instead of calibrating); the cache is
   still read and checked against the model's tensor names, so a malformed or
   foreign cache fails here rather than in the engine build.
2. Otherwise the data: `--cal_data_file` if it exists (checked against -d,
   `--batches` and `--batch_size` before any work); else `--cal_image_dir`
   (a directory or an s3:// prefix), refused before any work if it holds
   fewer than batches x batch_size images, and streamed through the
   preprocessing while the batches are also written to `--cal_data_file` (if
   one is named) for reuse. The tensorfile stays where `--cal_data_file`
   names it (it is large: batches x batch_size x H x W x 3 float32).
3. Streaming range collection (`calibration.collect`), per-tensor amax by the
   chosen method (`calibration.thresholds`), `cal.bin` in TensorRT's format
   (`calibration.calibration_cache`), and every method's ranges in
   `calibration.json`.
4. The QDQ model from the same ranges (`calibration.qdq`), and its agreement
   with the FP32 model on held-back images (`calibration.agreement`): the
   images that follow the calibration images in the seeded order.
5. `cal.bin`, the QDQ model (`<model>.qdq.onnx`) and the ranges are staged for
   publication beside the .etlt, so build Jobs find them there; a reused
   cache is published too.

The checks that need no computation (flag values, image count, an existing
tensorfile's shape) run in `preflight`, before the model is even fetched: a
user waiting on a 5000-image calibration learns of a typo at once. Every
problem a user can fix is raised as `UserError` with the flag to change.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from google.protobuf.message import DecodeError

from bodypose_exporter.calibration import calibration_cache
from bodypose_exporter.calibration.agreement import Agreement, compare
from bodypose_exporter.calibration.batches import ImageBatches, ImagesExhaustedError
from bodypose_exporter.calibration.calibration_cache import CalibrationCache
from bodypose_exporter.calibration.collect import (
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
from bodypose_exporter.manifest import MANIFEST_NAME, Kind, Manifest, file_name, model_stem
from bodypose_exporter.storage import s3
from bodypose_exporter.storage.location import Location
from bodypose_exporter.storage.outputs import OutputSet

log = logging.getLogger(__name__)

#: The refusal's wording, the same as the CRD's rule on the resource's calibration fields.
TOO_FEW_IMAGES = "The images must number at least batches x batchSize"
CACHE_NAME = file_name(Kind.CALIBRATION_CACHE)
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


def _this_cpu() -> str:
    """`x86_64 x86-avx2 (AMD EPYC)`: the machine the agreement figures were measured on."""
    cpu = cpu_hardware.describe()
    return f"{cpu['architecture']} {cpu['int8InstructionSet']} ({cpu['cpuModel']})"


def _validate(options: CalibrationOptions) -> None:
    if options.batches < 1:
        raise UserError(f"--batches must be at least 1, got {options.batches}")
    if options.batch_size < 1:
        raise UserError(f"--batch_size must be at least 1, got {options.batch_size}")
    if options.method not in METHODS:
        raise UserError(f"calibration method {options.method!r} is not one of {', '.join(METHODS)}")
    if not 0 < options.percentile <= 100:
        raise UserError(f"percentile must be in (0, 100], got {options.percentile}")
    if options.held_back < 0:
        raise UserError(f"held-back images must be 0 or more, got {options.held_back}")
    height, width = options.input_hw
    if height < 1 or width < 1:
        raise UserError(f"-d must give a positive height and width, got {height},{width}")


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


def _log_ignored(where: str, ignored: Sequence[str]) -> None:
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


@dataclass
class _Ranges:
    """What the calibration part produced (or the reused cache gave)."""

    amax: dict[str, float]
    cache: CalibrationCache
    reused: bool = False
    images: int = 0
    batches: int = 0
    images_per_second: float = 0.0
    tensorfile: Path | None = None
    tensorfile_written: bool = False
    ranges_file: Path | None = None


def _reuse_cache(options: CalibrationOptions, tensors: CalibrationTensors) -> _Ranges:
    cache = calibration_cache.read(options.cache_file)
    _check_cache(cache, tensors, options.cache_file)
    log.info(
        "--cal_cache_file %s exists (%d tensors, %s): calibration skipped",
        options.cache_file,
        len(cache.scales),
        cache.header,
    )
    return _Ranges(amax=cache.amax(), cache=cache, reused=True)


def _calibrate(
    model: onnx.ModelProto,
    tensors: CalibrationTensors,
    listing: ImageListing | None,
    images_source: ImageBatches | None,
    options: CalibrationOptions,
    out_dir: Path,
    seconds: dict[str, float],
) -> _Ranges:
    need = options.batches * options.batch_size
    with ExitStack() as stack:
        batch_iter: Iterator[npt.NDArray[np.float32]]
        tensorfile: Path | None = None
        if images_source is None:
            assert options.data_file is not None
            tensorfile = options.data_file
            log.info("calibrating from the tensorfile %s", tensorfile)
            batch_iter = prefetch(read_batches(tensorfile, options.batches, options.batch_size))
        else:
            batch_iter = images_source.batches(options.batches)
            if options.data_file is not None:
                # Closed (and renamed into place) as soon as the batches are through,
                # whatever happens to the QDQ model afterwards.
                writer = stack.enter_context(TensorFileWriter(options.data_file))
                batch_iter = _tee(batch_iter, writer)
                tensorfile = options.data_file

        t0 = time.perf_counter()
        collector = RangeCollector(model, tensors)
        seconds["session"] = time.perf_counter() - t0
        try:
            collected = collect(collector, batch_iter, need, options.progress)
        except ImagesExhaustedError as exc:
            assert listing is not None and images_source is not None
            message = _exhausted_message(listing, exc.produced, images_source.stats.corrupt, need)
            raise UserError(message) from exc
        seconds["calibrate"] = collected.seconds

    t0 = time.perf_counter()
    measured = {
        name: choose_amax(hist, options.method, options.percentile)
        for name, hist in collected.histograms.items()
    }
    amax = {name: measured[tensors.source(name)] for name in tensors.names}
    out_dir.mkdir(parents=True, exist_ok=True)
    ranges_file = out_dir / RANGES_NAME
    record = _ranges_record(collected.histograms, tensors, options)
    ranges_file.write_text(json.dumps(record, indent=1))
    cache = CalibrationCache.from_amax(amax, options.trt_version)
    calibration_cache.write(options.cache_file, cache)
    seconds["ranges"] = time.perf_counter() - t0
    return _Ranges(
        amax=amax,
        cache=cache,
        images=collected.images,
        batches=collected.batches,
        images_per_second=collected.images_per_second,
        tensorfile=tensorfile,
        tensorfile_written=tensorfile is not None and images_source is not None,
        ranges_file=ranges_file,
    )


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
    try:
        model = onnx.load(str(onnx_path))
    except (OSError, ValueError, DecodeError) as exc:
        raise UserError(f"{onnx_path} is not a readable ONNX model: {exc}") from exc
    _check_model(model, options.input_hw)
    tensors = select_tensors(model)
    need = options.batches * options.batch_size

    listing: ImageListing | None = None
    if options.image_dir is not None:
        listing = list_images(options.image_dir, options.seed)
        _log_ignored(str(listing.directory), [p.name for p in listing.ignored])

    with ExitStack() as stack:
        images_source: ImageBatches | None = None
        if options.cache_file.exists():
            ranges = _reuse_cache(options, tensors)
        else:
            if options.data_file is not None and options.data_file.exists():
                info = inspect(options.data_file)
                check_matches(info, options.batches, options.batch_size, options.input_hw)
            elif listing is None:
                raise UserError(
                    "--data_type int8 needs calibration data: --cal_image_dir, an existing "
                    "--cal_data_file, or an existing --cal_cache_file"
                )
            else:
                refuse_too_few(
                    str(listing.directory),
                    len(listing.images),
                    len(listing.ignored),
                    options.batches,
                    options.batch_size,
                )
                images_source = stack.enter_context(
                    ImageBatches(
                        listing.images,
                        options.batch_size,
                        options.input_hw,
                        options.normalization,
                        options.workers,
                    )
                )
            ranges = _calibrate(model, tensors, listing, images_source, options, out_dir, seconds)

        qdq_path: Path | None = None
        agreement: Agreement | None = None
        if options.write_qdq:
            t0 = time.perf_counter()
            out_dir.mkdir(parents=True, exist_ok=True)
            qdq_path = out_dir / f"{onnx_path.stem}_int8_qdq.onnx"
            write_qdq_model(onnx_path, ranges.amax, qdq_path)
            seconds["qdq"] = time.perf_counter() - t0
            if options.held_back > 0 and listing is not None:
                t0 = time.perf_counter()
                held_back = _held_back(listing, images_source, need, options)
                if held_back:
                    agreement = compare(onnx_path, qdq_path, held_back, cpu=_this_cpu())
                    log.info("%s", agreement.summary())
                else:
                    log.warning(
                        "no images left after the calibration set: no QDQ agreement figures"
                    )
                seconds["agreement"] = time.perf_counter() - t0
        corrupt = list(images_source.stats.corrupt) if images_source is not None else []

    seconds["total"] = time.perf_counter() - started
    result = CalibrationResult(
        cache_file=options.cache_file,
        cache_reused=ranges.reused,
        method=options.method,
        tensors=len(ranges.cache.scales),
        measured_tensors=len(tensors.measured),
        images=ranges.images,
        batches=ranges.batches,
        images_per_second=ranges.images_per_second,
        tensorfile=ranges.tensorfile,
        tensorfile_written=ranges.tensorfile_written,
        qdq_model=qdq_path,
        ranges_file=ranges.ranges_file,
        corrupt_images=tuple(p.name for p, _ in corrupt),
        ignored_files=len(listing.ignored) if listing else 0,
        agreement=agreement,
        seconds=seconds,
    )
    log.info("%s", summary_line(result))
    return result


def _tee(
    batches: Iterator[npt.NDArray[np.float32]], writer: TensorFileWriter
) -> Iterator[npt.NDArray[np.float32]]:
    for batch in batches:
        writer.write(batch)
        yield batch


def _held_back(
    listing: ImageListing,
    images_source: ImageBatches | None,
    need: int,
    options: CalibrationOptions,
) -> list[npt.NDArray[np.float32]]:
    if images_source is not None:  # continue the calibration stream: never overlaps it
        return images_source.remaining(options.held_back)
    with ImageBatches(
        listing.images[need:],
        options.batch_size,
        options.input_hw,
        options.normalization,
        options.workers,
    ) as later:
        return later.remaining(options.held_back)


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


# --- paths or s3:// URIs: what the CLI and the export Job name ---

DEFAULT_CACHE_FILE = "./cal.bin"
#: Parallel S3 downloads of calibration images (I/O bound; small objects).
_DOWNLOAD_THREADS = 8


def qdq_name_for(onnx_name: str) -> str:
    return file_name(Kind.QDQ_MODEL, model_stem(onnx_name))


@dataclass(frozen=True)
class CalibrationRequest:
    """The int8 flags of `bpnet-export`, as given (paths or s3:// URIs)."""

    cache_file: str = DEFAULT_CACHE_FILE  # --cal_cache_file
    image_dir: str | None = None  # --cal_image_dir
    data_file: str | None = None  # --cal_data_file
    batches: int = 10  # --batches
    batch_size: int = 1  # --batch_size
    force_ptq: bool = False  # --force_ptq: accepted; post-training quantization is all we do
    method: str = "entropy"


@dataclass(frozen=True)
class Plan:
    """What `preflight` found: which source calibration will use."""

    cache_exists: bool
    data_file_exists: bool
    #: The image names under an s3:// --cal_image_dir, listed once by preflight.
    s3_images: tuple[str, ...] = ()
    #: The other objects directly under it, counted as a directory's non-image files are.
    s3_ignored: tuple[str, ...] = ()


def _exists(location: str) -> bool:
    if s3.is_s3(location):
        return s3.exists(s3.S3Uri.parse(location))
    return Path(location).expanduser().exists()


def preflight(request: CalibrationRequest, input_hw: tuple[int, int]) -> Plan:
    """Every check that needs no computation; UserError naming the flag to change."""
    if request.batches < 1:
        raise UserError(f"--batches must be at least 1, got {request.batches}")
    if request.batch_size < 1:
        raise UserError(f"--batch_size must be at least 1, got {request.batch_size}")
    if _exists(request.cache_file):
        log.info("--cal_cache_file %s exists: calibration will be skipped", request.cache_file)
        return Plan(cache_exists=True, data_file_exists=False)
    if request.data_file is not None and _exists(request.data_file):
        if not s3.is_s3(request.data_file):
            info = inspect(Path(request.data_file).expanduser())
            check_matches(info, request.batches, request.batch_size, input_hw)
        log.info("--cal_data_file %s exists: calibrating from it", request.data_file)
        return Plan(cache_exists=False, data_file_exists=True)
    if request.image_dir is None:
        raise UserError(
            "--data_type int8 needs calibration data: --cal_image_dir, an existing "
            "--cal_data_file, or an existing --cal_cache_file"
        )
    s3_images: tuple[str, ...] = ()
    s3_ignored: tuple[str, ...] = ()
    if s3.is_s3(request.image_dir):
        names = s3.list_directory(s3.S3Uri.parse(request.image_dir))
        s3_images = tuple(n for n in names if Path(n).suffix.lower() in IMAGE_SUFFIXES)
        s3_ignored = tuple(n for n in names if Path(n).suffix.lower() not in IMAGE_SUFFIXES)
        found, ignored = len(s3_images), len(s3_ignored)
    else:
        listing = list_images(Path(request.image_dir).expanduser())
        found, ignored = len(listing.images), len(listing.ignored)
    refuse_too_few(request.image_dir, found, ignored, request.batches, request.batch_size)
    return Plan(
        cache_exists=False, data_file_exists=False, s3_images=s3_images, s3_ignored=s3_ignored
    )


def _download_images(prefix: str, names: tuple[str, ...], dst: Path) -> Path:
    """`names` under an s3:// prefix, into `dst` under their own names (same order as local)."""
    uri = s3.S3Uri.parse(prefix)
    dst.mkdir(parents=True, exist_ok=True)
    log.info("downloading %d calibration images from %s", len(names), prefix)

    def fetch(name: str) -> None:
        s3.download(uri.child(name), dst / name)

    with ThreadPoolExecutor(_DOWNLOAD_THREADS) as pool:
        list(pool.map(fetch, names))
    return dst


@contextmanager
def in_users_words(given: list[tuple[Path | None, str | None]]) -> Iterator[None]:
    """A UserError about a downloaded work file names what the user gave (their s3://
    URI), never the pod's scratch path: the algorithms only know local files."""
    try:
        yield
    except UserError as exc:
        text = str(exc)
        for local, location in given:
            if local is not None and location is not None and str(local) != location:
                text = text.replace(str(local), location)
        exc.args = (text,)
        raise


def _local(location: str, work: Path, name: str, fetch_existing: bool) -> Path:
    """A local path for `location`: itself, or a work file (downloaded if it exists)."""
    if not s3.is_s3(location):
        return Path(location).expanduser()
    path = work / name
    if fetch_existing:
        s3.download(s3.S3Uri.parse(location), path)
    return path


@dataclass(frozen=True)
class Calibrated:
    """Files to publish beside the .etlt (staged names), and the manifest's record."""

    published_names: list[tuple[Kind, str]]  # (kind, staged name)
    details: dict[str, Any]


def calibrate(
    request: CalibrationRequest,
    plan: Plan,
    onnx_path: Path,
    input_hw: tuple[int, int],
    normalization: Normalization,
    work: Path,
    staging: Path,
) -> Calibrated:
    """Calibrate the staged FP32 ONNX model; stage cal.bin, the QDQ model and the ranges."""
    cal_work = work / "calibration"
    cal_work.mkdir(parents=True, exist_ok=True)
    cache = _local(request.cache_file, cal_work, CACHE_NAME, plan.cache_exists)
    data_file = (
        _local(request.data_file, cal_work, "calibration.tensorfile", plan.data_file_exists)
        if request.data_file is not None
        else None
    )
    image_dir: Path | None = None
    from_s3 = request.image_dir is not None and s3.is_s3(request.image_dir)
    if request.image_dir is not None and not plan.cache_exists:
        if from_s3:
            # Only the images are downloaded; the others are counted as a directory's are.
            _log_ignored(request.image_dir, plan.s3_ignored)
            image_dir = _download_images(request.image_dir, plan.s3_images, cal_work / "images")
        else:
            image_dir = Path(request.image_dir).expanduser()
    if request.force_ptq:
        log.info("--force_ptq: post-training quantization (the only kind this exporter does)")
    given = [(cache, request.cache_file), (data_file, request.data_file),
             (image_dir, request.image_dir)]  # fmt: skip
    with in_users_words(given):
        result = run_calibration(
            onnx_path,
            CalibrationOptions(
                cache_file=cache,
                batches=request.batches,
                batch_size=request.batch_size,
                input_hw=input_hw,
                image_dir=image_dir,
                data_file=data_file,
                method=request.method,
                normalization=normalization,
            ),
            cal_work / "out",
        )
    if from_s3:
        result = dataclasses.replace(result, ignored_files=len(plan.s3_ignored))
    print(summary_line(result), flush=True)

    if s3.is_s3(request.cache_file) and not result.cache_reused:
        s3.upload(cache, s3.S3Uri.parse(request.cache_file))
    if request.data_file is not None and s3.is_s3(request.data_file) and result.tensorfile_written:
        assert data_file is not None
        s3.upload(data_file, s3.S3Uri.parse(request.data_file))

    staged: list[tuple[Kind, str]] = [(Kind.CALIBRATION_CACHE, CACHE_NAME)]
    shutil.copyfile(cache, staging / CACHE_NAME)
    if result.qdq_model is not None:
        qdq = qdq_name_for(onnx_path.name)
        shutil.copyfile(result.qdq_model, staging / qdq)
        staged.append((Kind.QDQ_MODEL, qdq))
    if result.ranges_file is not None:
        shutil.copyfile(result.ranges_file, staging / RANGES_NAME)
        staged.append((Kind.CALIBRATION_RANGES, RANGES_NAME))

    details = result.as_dict()
    # Local work paths mean nothing to a reader: name what the user named, and
    # leave the published files to the manifest's artifacts.
    del details["qdqModel"], details["rangesFile"]
    details.update(
        {
            "cacheFile": request.cache_file,
            "tensorfile": request.data_file if result.tensorfile is not None else None,
            "imageDir": request.image_dir,
            "forcePtq": request.force_ptq,
        }
    )
    return Calibrated(published_names=staged, details=details)


@dataclass(frozen=True)
class CalibrateStageResult:
    published: list[str]
    manifest: dict[str, Any]


def run_calibrate_stage(
    request: CalibrationRequest,
    onnx: str,
    input_hw: tuple[int, int],
    output_dir: str,
    normalization: Normalization | None = None,
) -> CalibrateStageResult:
    """`bpnet calibrate`: an exported FP32 ONNX model (path or s3://) in; cal.bin, the QDQ model,
    calibration.json and a manifest.json published to `output_dir` (a directory or s3://
    prefix), all-or-nothing, the manifest last."""
    plan = preflight(request, input_hw)
    manifest = Manifest(command="calibrate")
    destination = f"{output_dir.rstrip('/')}/{MANIFEST_NAME}"
    with (
        OutputSet(destination) as out,
        tempfile.TemporaryDirectory(prefix="bpnet-calibrate-") as tmp,
    ):
        work = Path(tmp)
        with manifest.timed("fetch"):
            onnx_path = Location(onnx).fetch(work, "ONNX model")
        with manifest.timed("calibrate"):
            calibrated = calibrate(
                request, plan, onnx_path, input_hw, normalization or Normalization(), work,
                out.staging,
            )  # fmt: skip
        names = []
        for kind, name in calibrated.published_names:
            manifest.add_artifact(kind, out.staged(name), out.final_location(name))
            names.append(name)
        manifest.inputs = {"onnx": onnx}
        manifest.details = {"inputDims": [*input_hw, 3], "calibration": calibrated.details}
        manifest.write(out.staged(MANIFEST_NAME))
        published = out.publish([*names, MANIFEST_NAME])
    return CalibrateStageResult(published=published, manifest=manifest.to_dict())
