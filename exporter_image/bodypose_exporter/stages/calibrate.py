"""The INT8 calibration stage on paths or s3:// URIs: cal.bin, QDQ model and ranges for publication.

What `bpnet-export --data_type int8` (and so the export Job) calls,
`preflight` then `calibrate`, and `run_calibrate_stage` (`bpnet calibrate`,
the same on an exported ONNX model), with each location a path or an s3://
URI: existing objects are downloaded, files made here uploaded to the URI
named, exactly as local paths would be written. The calibration itself is
the local driver's, on local copies: `stages.local_calibration`, whose
docstring says what it does, following TAO's exporter.

1. `preflight`: the checks that need no computation (flag values, which data
   calibration will use, an existing local tensorfile's shape, the image
   count of a directory or an s3:// prefix), before the model is even
   fetched: a user waiting on a 5000-image calibration learns of a typo at
   once. They are the local driver's checks (`check_batches`,
   `choose_source`, `check_tensorfile`, `refuse_too_few`), run early.
2. `calibrate`: an existing s3:// cache or tensorfile is downloaded, and of
   an s3:// image prefix only the images `preflight` listed (the other
   objects are counted as a directory's non-image files are);
   `run_calibration` on the local files; cal.bin and a tensorfile made here
   are uploaded where their flags name them; cal.bin (made or reused), the
   QDQ model (`<model>.qdq.onnx`) and the ranges are staged for publication
   beside the .etlt, so build Jobs find them there.

Every problem a user can fix is raised as `UserError` with the flag to
change, naming the user's own URI, never a scratch copy (`in_users_words`).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bodypose_exporter.calibration.images import list_images
from bodypose_exporter.calibration.preprocess import Normalization
from bodypose_exporter.errors import UserError
from bodypose_exporter.manifest import MANIFEST_NAME, Kind, Manifest, file_name, model_stem
from bodypose_exporter.stages.local_calibration import (
    RANGES_NAME,
    CalibrationOptions,
    CalibrationResult,
    CalibrationSource,
    check_batches,
    check_tensorfile,
    choose_source,
    is_image,
    log_ignored,
    refuse_too_few,
    run_calibration,
    summary_line,
)
from bodypose_exporter.storage.location import Location
from bodypose_exporter.storage.outputs import OutputSet

log = logging.getLogger(__name__)

DEFAULT_CACHE_FILE = "./cal.bin"
CACHE_NAME = file_name(Kind.CALIBRATION_CACHE)
#: The scratch copy of an s3:// --cal_data_file.
_TENSORFILE_NAME = "calibration.tensorfile"
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
class CalibrationPlan:
    """What `preflight` found: the data calibration will use, and an s3:// --cal_image_dir's
    listing."""

    source: CalibrationSource
    #: The image names under an s3:// --cal_image_dir, listed once by preflight.
    s3_images: tuple[str, ...] = ()
    #: The other objects directly under it, counted as a directory's non-image files are.
    s3_ignored: tuple[str, ...] = ()


@dataclass(frozen=True)
class StagedCalibration:
    """Files to publish beside the .etlt (staged names), and the manifest's record."""

    published_names: list[tuple[Kind, str]]  # (kind, staged name)
    details: dict[str, Any]
    #: The held-back images, preprocessed, that the QDQ agreement was measured on.
    held_back: tuple[Any, ...] = ()


@dataclass(frozen=True)
class CalibrateStageResult:
    published: list[str]
    manifest: dict[str, Any]


def _existing(uri: str) -> Path | Location:
    """What `choose_source` asks whether it exists: the S3 object, or the local path as
    `run_calibration` asks it (anything there counts: a directory named as the cache is
    then refused when read, where `Location.exists` would count only a file)."""
    location = Location(uri)
    return location if location.is_s3 else Path(uri).expanduser()


def preflight(request: CalibrationRequest, input_hw: tuple[int, int]) -> CalibrationPlan:
    """Every check that needs no computation; UserError naming the flag to change."""
    check_batches(request.batches, request.batch_size)
    data_file = _existing(request.data_file) if request.data_file is not None else None
    source = choose_source(_existing(request.cache_file), data_file, request.image_dir is not None)
    if source is CalibrationSource.CACHE:
        log.info("--cal_cache_file %s exists: calibration will be skipped", request.cache_file)
        return CalibrationPlan(source)
    if source is CalibrationSource.TENSORFILE:
        if isinstance(data_file, Path):  # an s3:// one is checked once downloaded
            check_tensorfile(data_file, request.batches, request.batch_size, input_hw)
        log.info("--cal_data_file %s exists: calibrating from it", request.data_file)
        return CalibrationPlan(source)
    assert request.image_dir is not None
    image_dir = Location(request.image_dir)
    s3_images: tuple[str, ...] = ()
    s3_ignored: tuple[str, ...] = ()
    if image_dir.is_s3:
        names = image_dir.list()
        s3_images = tuple(n for n in names if is_image(n))
        s3_ignored = tuple(n for n in names if not is_image(n))
        found, ignored = len(s3_images), len(s3_ignored)
    else:
        listing = list_images(Path(request.image_dir).expanduser())
        found, ignored = len(listing.images), len(listing.ignored)
    refuse_too_few(request.image_dir, found, ignored, request.batches, request.batch_size)
    return CalibrationPlan(source, s3_images, s3_ignored)


def calibrate(
    request: CalibrationRequest,
    plan: CalibrationPlan,
    onnx_path: Path,
    input_hw: tuple[int, int],
    normalization: Normalization,
    work: Path,
    staging: Path,
) -> StagedCalibration:
    """Calibrate the staged FP32 ONNX model; stage cal.bin, the QDQ model and the ranges."""
    cal_work = work / "calibration"
    cal_work.mkdir(parents=True, exist_ok=True)
    source = plan.source
    cache = _work_file(request.cache_file, cal_work / CACHE_NAME, source is CalibrationSource.CACHE)
    data_file = None
    if request.data_file is not None:
        fetch = source is CalibrationSource.TENSORFILE
        data_file = _work_file(request.data_file, cal_work / _TENSORFILE_NAME, fetch)
    image_dir = _image_dir(request, plan, cal_work / "images")
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
    if request.image_dir is not None and Location(request.image_dir).is_s3:
        result = dataclasses.replace(result, ignored_files=len(plan.s3_ignored))
    print(summary_line(result), flush=True)
    _put_back(request, result, cache, data_file)
    staged = _stage(result, cache, onnx_path.name, staging)
    return StagedCalibration(staged, _details(request, result), result.held_back)


def _work_file(uri: str, scratch: Path, fetch_existing: bool) -> Path:
    """A local path for `uri`: the path itself, or for an s3:// URI the `scratch` file
    (downloaded into it when the object exists and calibration reads it)."""
    location = Location(uri)
    if not location.is_s3:
        return Path(uri).expanduser()
    if fetch_existing:
        # Location.fetch names its download after the key: into a folder of its own,
        # then under the scratch name, so two inputs never share a file.
        with tempfile.TemporaryDirectory(dir=scratch.parent) as tmp:
            location.fetch(Path(tmp), "calibration input").replace(scratch)
    return scratch


def _image_dir(request: CalibrationRequest, plan: CalibrationPlan, scratch: Path) -> Path | None:
    """The local directory of the images, unless a reused cache needs none: --cal_image_dir
    itself, or the images `preflight` listed under an s3:// prefix, downloaded into
    `scratch`."""
    if request.image_dir is None or plan.source is CalibrationSource.CACHE:
        return None
    prefix = Location(request.image_dir)
    if not prefix.is_s3:
        return Path(request.image_dir).expanduser()
    # Only the images are downloaded; the others are counted as a directory's are.
    log_ignored(request.image_dir, plan.s3_ignored)
    scratch.mkdir(parents=True, exist_ok=True)
    log.info("downloading %d calibration images from %s", len(plan.s3_images), request.image_dir)

    def fetch(name: str) -> None:
        prefix.child(name).fetch(scratch, "calibration image")

    with ThreadPoolExecutor(_DOWNLOAD_THREADS) as pool:
        list(pool.map(fetch, plan.s3_images))
    return scratch


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


def _put_back(
    request: CalibrationRequest, result: CalibrationResult, cache: Path, data_file: Path | None
) -> None:
    """cal.bin and a tensorfile made here, uploaded to the s3:// URIs their flags name (a
    local path was written in place)."""
    cache_location = Location(request.cache_file)
    if cache_location.is_s3 and not result.cache_reused:
        cache_location.put(cache)
    if request.data_file is not None and result.tensorfile_written:
        data_location = Location(request.data_file)
        if data_location.is_s3:
            assert data_file is not None
            data_location.put(data_file)


def _stage(
    result: CalibrationResult, cache: Path, onnx_name: str, staging: Path
) -> list[tuple[Kind, str]]:
    """cal.bin (made or reused), the QDQ model and the ranges, copied into `staging` under
    their published names; (kind, name) of each."""
    files = [
        (Kind.CALIBRATION_CACHE, cache, CACHE_NAME),
        (Kind.QDQ_MODEL, result.qdq_model, qdq_name_for(onnx_name)),
        (Kind.CALIBRATION_RANGES, result.ranges_file, RANGES_NAME),
    ]
    staged: list[tuple[Kind, str]] = []
    for kind, local, name in files:
        if local is not None:
            shutil.copyfile(local, staging / name)
            staged.append((kind, name))
    return staged


def _details(request: CalibrationRequest, result: CalibrationResult) -> dict[str, Any]:
    """The manifest's `calibration` record."""
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
    return details


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
