"""The calibration image directory: which files count, in which order, and decoding them.

TAO (`nvidia_tao_tf1/cv/core/export/base_exporter.py`, `generate_tensor_file`)
lists the directory without recursion, keeps names ending in `jpg`, `jpeg`
or `png`, refuses fewer than `batches * batch_size` of them and draws that
many at random. We do the same with two changes a user would expect:

- the extension test ignores case (`IMG_0001.JPG` counts; TAO would skip it);
- the draw is a seeded shuffle of the sorted names, so the same directory
  gives the same calibration set, cache and content key on every run.

Decoding uses OpenCV's `IMREAD_COLOR`, as TAO's bpnet inferencer (`cv2.imread`)
does: grayscale becomes three equal channels, an alpha channel is dropped,
16-bit images are scaled to 8 bits, EXIF orientation is applied. A file that
does not decode, or a JPEG/PNG whose end marker is missing (libjpeg decodes a
truncated JPEG into a grey-filled picture without failing), is corrupt: the
caller skips and counts it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from bodypose_exporter.errors import UserError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
#: Bytes after the end marker we still accept (some writers pad or append a little).
_TRAILER_SLACK = 1024


class CorruptImageError(Exception):
    """An image file that cannot be used; the message says why (never shown alone)."""


@dataclass(frozen=True)
class ImageListing:
    directory: Path
    images: tuple[Path, ...]  # in calibration order (seeded shuffle)
    ignored: tuple[Path, ...]  # regular files that are not .jpg/.jpeg/.png


def list_images(directory: Path, seed: int = 0) -> ImageListing:
    """The image files directly in `directory`, shuffled with `seed`; UserError if unusable."""
    if not directory.exists():
        raise UserError(f"--cal_image_dir {directory} does not exist")
    if not directory.is_dir():
        raise UserError(f"--cal_image_dir {directory} is not a directory")
    try:
        entries = sorted(p for p in directory.iterdir() if p.is_file())
    except OSError as exc:
        raise UserError(f"--cal_image_dir {directory} cannot be listed: {exc}") from exc
    images = [p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES]
    ignored = [p for p in entries if p.suffix.lower() not in IMAGE_SUFFIXES]
    random.Random(seed).shuffle(images)
    return ImageListing(directory=directory, images=tuple(images), ignored=tuple(ignored))


def _check_complete(data: bytes, suffix: str) -> None:
    if suffix in (".jpg", ".jpeg"):
        if not data.startswith(b"\xff\xd8"):
            raise CorruptImageError("not a JPEG (no start-of-image marker)")
        if data.rfind(b"\xff\xd9") < len(data) - 2 - _TRAILER_SLACK:
            raise CorruptImageError("truncated JPEG (no end-of-image marker)")
    elif suffix == ".png":
        if not data.startswith(b"\x89PNG\r\n\x1a\n"):
            raise CorruptImageError("not a PNG (bad signature)")
        if data.rfind(b"IEND") < len(data) - 8 - _TRAILER_SLACK:
            raise CorruptImageError("truncated PNG (no IEND chunk)")


def decode(path: Path) -> npt.NDArray[np.uint8]:
    """Read one image as BGR uint8 (H, W, 3); CorruptImageError if it cannot be used."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CorruptImageError(f"unreadable: {exc.strerror or exc}") from exc
    if not data:
        raise CorruptImageError("empty file")
    _check_complete(data, path.suffix.lower())
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as exc:  # e.g. more pixels than OpenCV's safety limit
        raise CorruptImageError(f"cannot be decoded: {exc.err or exc}") from exc
    if image is None:
        raise CorruptImageError("cannot be decoded")
    return np.asarray(image, dtype=np.uint8)
