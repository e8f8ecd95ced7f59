"""Batches of preprocessed images, decoded in parallel ahead of the forward passes.

Decoding and resizing run in a thread pool: OpenCV releases the GIL in
`imdecode`, `resize` and `cvtColor`, so the threads really run side by side
with ONNX Runtime, which releases it too. A window of futures, a few batches
deep, is kept in flight, so while the network runs batch k the images of
batch k+1 are already being prepared; the window bounds memory to those few
batches whatever the number of images.

Results are taken in submission order, so the calibration set depends only
on the directory and the seed, never on thread timing. A corrupt image is
skipped and recorded and the next candidate takes its place; only when the
candidates run out does the caller hear about it (`ImagesExhaustedError`).
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bodypose_exporter.calibration.images import CorruptImageError, decode
from bodypose_exporter.calibration.preprocess import Normalization, preprocess

log = logging.getLogger(__name__)

Batch = npt.NDArray[np.float32]


class ImagesExhaustedError(Exception):
    """Fewer usable images than asked for; `produced` says how many were usable."""

    def __init__(self, produced: int) -> None:
        super().__init__(f"only {produced} usable images")
        self.produced = produced


@dataclass
class ImageStats:
    """What happened to the candidate images (filled in while batches are produced)."""

    used: int = 0
    corrupt: list[tuple[Path, str]] = field(default_factory=list)


def default_workers() -> int:
    # One decoder per core is enough to stay ahead of a CPU forward pass, and
    # more would only take cores from ONNX Runtime.
    return max(1, min(4, os.cpu_count() or 1))


def _load(path: Path, height: int, width: int, norm: Normalization) -> Batch:
    return preprocess(decode(path), height, width, norm)


class ImageBatches:
    """Iterate `batch_size`-image batches (N, H, W, 3) float32 from `paths`, in order."""

    def __init__(
        self,
        paths: Sequence[Path],
        batch_size: int,
        input_hw: tuple[int, int],
        normalization: Normalization | None = None,
        workers: int | None = None,
        prefetch_batches: int = 2,
    ) -> None:
        self._paths = paths
        self._next = 0
        self.batch_size = batch_size
        self.height, self.width = input_hw
        self.normalization = normalization or Normalization()
        self.stats = ImageStats()
        self._pool = ThreadPoolExecutor(
            max_workers=workers or default_workers(), thread_name_prefix="cal-decode"
        )
        self._window = max(1, prefetch_batches) * batch_size + (workers or default_workers())
        self._pending: deque[tuple[Path, Future[Batch]]] = deque()

    def __enter__(self) -> ImageBatches:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for _, future in self._pending:
            future.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _fill(self) -> None:
        while len(self._pending) < self._window and self._next < len(self._paths):
            path = self._paths[self._next]
            self._next += 1
            future = self._pool.submit(_load, path, self.height, self.width, self.normalization)
            self._pending.append((path, future))

    def next_image(self) -> Batch | None:
        """The next usable preprocessed image, or None when the candidates are used up."""
        while True:
            self._fill()
            if not self._pending:
                return None
            path, future = self._pending.popleft()
            try:
                image = future.result()
            except CorruptImageError as exc:
                log.warning("skipping %s: %s", path.name, exc)
                self.stats.corrupt.append((path, str(exc)))
                continue
            self.stats.used += 1
            return image

    def batches(self, count: int) -> Iterator[Batch]:
        """Exactly `count` full batches; ImagesExhaustedError if the images run out first."""
        for _ in range(count):
            batch = np.empty((self.batch_size, self.height, self.width, 3), dtype=np.float32)
            for i in range(self.batch_size):
                image = self.next_image()
                if image is None:
                    raise ImagesExhaustedError(self.stats.used)
                batch[i] = image
            yield batch

    def remaining(self, limit: int) -> list[Batch]:
        """Up to `limit` further usable images (held back from calibration), one per entry."""
        out: list[Batch] = []
        while len(out) < limit:
            image = self.next_image()
            if image is None:
                break
            out.append(image)
        return out
