"""The export stage's INT8 step: resolve the calibration flags (paths or s3://), calibrate, publish.

`bpnet-export --data_type int8` follows `tao model bpnet export`
(NVIDIA/tao_tensorflow1_backend `nvidia_tao_tf1/cv/bpnet/scripts/export.py`):
`--cal_cache_file` (default `./cal.bin`) is reused when it exists, else
`--cal_data_file` when it exists, else the tensorfile is made from
`--cal_image_dir`. The calibration itself is `calibration.run_calibration`;
this module only moves files so that the Job (which reads and writes S3) and a
user on a workstation (local paths) get the same behaviour:

- each of the three may be an s3:// URI (the image directory an s3:// prefix);
  existing objects are downloaded, files made here are uploaded to the URI
  named, exactly as local paths would be written;
- the checks that need no computation (flag values, image count, an existing
  tensorfile's shape) run in `preflight`, before the model is even fetched:
  a user waiting on a 5000-image calibration learns of a typo at once;
- `cal.bin`, the QDQ model (`<model>.qdq.onnx`) and the per-tensor ranges
  (`calibration.json`) are published with the .etlt, so build Jobs find them
  beside it; a reused cache is published too. The tensorfile stays where
  `--cal_data_file` names it (it is large: batches x batch_size x H x W x 3
  float32), and is not written at all without that flag.
"""

from __future__ import annotations

import logging
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bodypose_exporter.calibration import CalibrationOptions, run_calibration
from bodypose_exporter.calibration.images import IMAGE_SUFFIXES, list_images
from bodypose_exporter.calibration.preprocess import Normalization
from bodypose_exporter.calibration.stage import refuse_too_few, summary_line
from bodypose_exporter.calibration.tensorfile import check_matches, inspect
from bodypose_exporter.errors import UserError
from bodypose_exporter.storage import s3

log = logging.getLogger(__name__)

CACHE_NAME = "cal.bin"
RANGES_NAME = "calibration.json"
DEFAULT_CACHE_FILE = "./cal.bin"
#: Parallel S3 downloads of calibration images (I/O bound; small objects).
_DOWNLOAD_THREADS = 8


def qdq_name_for(onnx_name: str) -> str:
    stem = onnx_name[: -len(".onnx")] if onnx_name.endswith(".onnx") else onnx_name
    return f"{stem}.qdq.onnx"


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
    if s3.is_s3(request.image_dir):
        names = s3.list_directory(s3.S3Uri.parse(request.image_dir))
        s3_images = tuple(n for n in names if Path(n).suffix.lower() in IMAGE_SUFFIXES)
        found, ignored = len(s3_images), len(names) - len(s3_images)
    else:
        listing = list_images(Path(request.image_dir).expanduser())
        found, ignored = len(listing.images), len(listing.ignored)
    refuse_too_few(request.image_dir, found, ignored, request.batches, request.batch_size)
    return Plan(cache_exists=False, data_file_exists=False, s3_images=s3_images)


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

    published_names: list[tuple[str, str]]  # (kind, staged name)
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
    if request.image_dir is not None and not plan.cache_exists:
        image_dir = (
            _download_images(request.image_dir, plan.s3_images, cal_work / "images")
            if s3.is_s3(request.image_dir)
            else Path(request.image_dir).expanduser()
        )
    if request.force_ptq:
        log.info("--force_ptq: post-training quantization (the only kind this exporter does)")
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
    print(summary_line(result), flush=True)

    if s3.is_s3(request.cache_file) and not result.cache_reused:
        s3.upload(cache, s3.S3Uri.parse(request.cache_file))
    if request.data_file is not None and s3.is_s3(request.data_file) and result.tensorfile_written:
        assert data_file is not None
        s3.upload(data_file, s3.S3Uri.parse(request.data_file))

    staged: list[tuple[str, str]] = [("calibration-cache", CACHE_NAME)]
    shutil.copyfile(cache, staging / CACHE_NAME)
    if result.qdq_model is not None:
        qdq = qdq_name_for(onnx_path.name)
        shutil.copyfile(result.qdq_model, staging / qdq)
        staged.append(("qdq-model", qdq))
    if result.ranges_file is not None:
        shutil.copyfile(result.ranges_file, staging / RANGES_NAME)
        staged.append(("calibration-ranges", RANGES_NAME))

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
