"""The evaluation set from where the user keeps it: local paths or s3:// URIs, read once.

`annotations` is a COCO JSON file, `images` a directory or an s3:// prefix
that holds each image's `file_name`. From S3 only the images that will be
evaluated are downloaded (after `maxImages`), and a listing of the prefix is
compared with the annotations first, so a set whose files are missing is
refused before any download or inference. S3 is reached as everywhere else
in the exporter, through `storage.location.Location` (the standard AWS_*
environment, i.e. the credentials the resource's Secret gives the Job; only
`storage` talks to S3, `.importlinter` holds it); a refusal names the URI and
says that those credentials cannot read it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from bodypose_exporter.errors import NotFoundError, UserError
from bodypose_exporter.evaluation.dataset import (
    EvaluationSet,
    EvaluationSetError,
    missing_files,
    parse_annotations,
    refuse_missing,
    select,
)
from bodypose_exporter.storage.errors import AccessDeniedError
from bodypose_exporter.storage.location import Location

log = logging.getLogger(__name__)

_DOWNLOAD_THREADS = 8


class EvaluationSetUnreadableError(UserError):
    """The evaluation set exists (or may) but cannot be read with the credentials given."""

    reason = "EvaluationSetUnreadable"


@contextmanager
def _reading(what: str, uri: str) -> Iterator[None]:
    try:
        yield
    except NotFoundError as exc:
        raise EvaluationSetError(f"evaluation {what} {uri}: {exc}") from exc
    except AccessDeniedError as exc:
        raise EvaluationSetUnreadableError(
            f"cannot read the evaluation {what} {uri}: access denied with the S3 credentials "
            "this process has (AWS_ACCESS_KEY_ID; in a cluster, the resource's "
            f"credentialsSecretRef): allow them to read it ({exc})"
        ) from exc


def _read_annotations(uri: str, work: Path) -> str:
    location = Location(uri)
    if location.is_s3:
        path = work / "annotations.json"
        with _reading("annotations", uri):
            location.download(path)
    else:
        path = Path(uri).expanduser()
        if not path.is_file():
            raise EvaluationSetError(f"evaluation annotations {uri} do not exist (or not a file)")
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise EvaluationSetError(f"evaluation annotations {uri} cannot be read: {exc}") from exc


def _local_images(uri: str, names: list[str]) -> Path:
    directory = Path(uri).expanduser()
    if not directory.is_dir():
        raise EvaluationSetError(f"evaluation images {uri} is not a directory")
    available = {name for name in names if (directory / name).is_file()}
    refuse_missing(missing_files([{"file_name": n} for n in names], available), len(names), uri)
    return directory


def _s3_images(uri: str, names: list[str], work: Path) -> Path:
    prefix = Location(uri)
    with _reading("images", uri):
        listed = set(prefix.list())
    # file_name may hold a sub-path; those are looked up one by one.
    nested = [n for n in names if "/" in n]
    with _reading("images", uri):
        available = listed | {n for n in nested if prefix.child(n).exists()}
    refuse_missing(missing_files([{"file_name": n} for n in names], available), len(names), uri)
    dst = work / "images"
    log.info("downloading %d evaluation images from %s", len(names), uri)

    def fetch(name: str) -> None:
        prefix.child(name).download(dst / name)

    with _reading("images", uri), ThreadPoolExecutor(_DOWNLOAD_THREADS) as pool:
        list(pool.map(fetch, names))
    return dst


def open_set(
    annotations: str, images: str, work: Path, max_images: int | None = None
) -> EvaluationSet:
    """The checked evaluation set with its images on local disk (under `work` if from S3)."""
    dataset = parse_annotations(_read_annotations(annotations, work), annotations)
    chosen, notes = select(dataset, annotations, max_images)
    names = [image["file_name"] for image in chosen["images"]]
    if Location(images).is_s3:
        images_dir = _s3_images(images, names, work)
    else:
        images_dir = _local_images(images, names)
    return EvaluationSet(chosen, images_dir, annotations, images, max_images, notes)
