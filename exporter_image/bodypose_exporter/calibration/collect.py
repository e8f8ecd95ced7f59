"""Streaming range collection: forward passes, with each tensor's histogram updated per batch.

Nothing of a batch survives it but the counts: memory is the model, ONNX
Runtime's buffers for one batch, a few prefetched input batches and 2048
int64 counts per measured tensor, whatever the number of images.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
from tqdm import tqdm

from bodypose_exporter.calibration import session_memory
from bodypose_exporter.calibration.augment import augment
from bodypose_exporter.calibration.histogram import (
    BINS,
    AbsHistogram,
    Counts,
    count_with_top_edge,
    widen,
)
from bodypose_exporter.calibration.tensors import CalibrationTensors
from bodypose_exporter.errors import UserError

log = logging.getLogger(__name__)
T = TypeVar("T")


def model_input(model: onnx.ModelProto) -> onnx.ValueInfoProto:
    """The single data input of the model (initializers are not inputs)."""
    constants = {init.name for init in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in constants]
    if len(inputs) != 1:
        names = ", ".join(v.name for v in inputs)
        raise UserError(f"calibration expects a model with one input; this one has: {names}")
    value: onnx.ValueInfoProto = inputs[0]
    return value


def input_dims(value: onnx.ValueInfoProto) -> list[int | str]:
    return [
        d.dim_param if d.HasField("dim_param") or not d.HasField("dim_value") else int(d.dim_value)
        for d in value.type.tensor_type.shape.dim
    ]


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Iterate `items` produced by a background thread, up to `depth` ahead (errors re-raised)."""
    slots: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(entry: tuple[bool, object]) -> bool:
        while not stop.is_set():  # never block forever on a consumer that has gone
            try:
                slots.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((False, None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put((False, exc))

    worker = threading.Thread(target=produce, name="cal-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            ok, item = slots.get()
            if not ok:
                if isinstance(item, BaseException):
                    raise item
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join(timeout=5)


@dataclass(frozen=True)
class Collected:
    histograms: dict[str, AbsHistogram]
    images: int
    batches: int
    seconds: float

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


class RangeCollector:
    """Runs the calibration model on batches and keeps one |x| histogram per measured tensor.

    Each batch runs `images_per_run` images at a time, with TensorRT's per-batch
    ranges all the same. Why: ONNX Runtime hands the bin indices of every
    measured tensor back at the end of a run, so a run holds all of them at
    once (370 MB for BpNet at 320x448 and 4 images, on top of the activations,
    in ONNX Runtime's arena, which keeps its peak); one image at a time holds a
    quarter of that. Binding preallocated outputs (IOBinding) was measured and
    made it worse: the buffers are resident for the whole run, while ONNX
    Runtime allocates outputs only as the graph reaches them, and its
    `session.run` already hands them to numpy without a copy.

    The ranges stay the batch's, exactly (`histogram.widen`):

    - a tensor with no range yet (the first batch) takes the batch's max |x|:
      a first pass fetches only the maxima, and the counting pass gets that
      max as its incoming range, which the graph then keeps (it only doubles a
      range that is exceeded);
    - otherwise every run grows the incoming range by powers of two as far as
      its own images need; the batch's range is the largest of them (the
      growth is monotonic in the max), and each run's counts are merged into
      its bins by the same power-of-two step as a range doubling.

    A run's bin indices are counted on every core, one tensor per thread
    (OpenCV's calcHist releases the GIL and counts on one core): between two
    runs ONNX Runtime leaves the cores idle, and counting one tensor after the
    other took 0.27 s of each 2.1 s batch of 4 images (BpNet at 320x448, two
    cores; 1.98 s a batch counted so). Counting alongside the next run instead
    was measured too and bought nothing more: the run already fills the cores.
    The counts are integers, so their order changes nothing.

    Measured and dropped (BpNet 320x448, batches of 4 interleaved with the bare
    forward passes, 2-core Xeon with AMX, 2026-12-07; what is left is ONNX
    Runtime's element-wise kernels: the probes' Cast, Mul, ReduceMax and the
    NCHWc-to-NCHW reorders they need, ~20% of a run): float indices counted by
    calcHist in place of the uint16 Cast, the probe's one single-threaded op
    (same histograms, same time: the counting reads twice the bytes); ONNX
    Runtime's parallel execution mode, the probes beside the convolutions (1.8x
    slower); 2 or 4 images a run (1.31x and 1.32x the forward passes against
    1.35x, for up to four times the indices held at once).
    """

    def __init__(
        self,
        model: onnx.ModelProto,
        tensors: CalibrationTensors,
        session_options: ort.SessionOptions | None = None,
        images_per_run: int = 1,
    ) -> None:
        self.input_name = model_input(model).name
        calibration_model, self.probes = augment(model, tensors)
        serialized = calibration_model.SerializeToString()
        del calibration_model
        self.session = ort.InferenceSession(
            serialized,
            sess_options=session_options or session_memory.session_options(),
            providers=["CPUExecutionProvider"],
        )
        del serialized
        session_memory.release_freed_heap()  # the copies above, before the loop's peak
        self.images_per_run = max(1, images_per_run)
        self.histograms = {probe.tensor: AbsHistogram() for probe in self.probes}
        self._outputs = [name for p in self.probes for name in (p.index, p.range_out, p.amax)]
        self._counting = ThreadPoolExecutor(
            max_workers=len(os.sched_getaffinity(0)), thread_name_prefix="cal-count"
        )
        self.images = 0
        self.batches = 0

    def close(self) -> None:
        """Ends the counting threads (the histograms stay readable)."""
        self._counting.shutdown(wait=True)

    def __enter__(self) -> RangeCollector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, batch: npt.NDArray[np.float32]) -> None:
        step = self.images_per_run
        runs = [batch[i : i + step] for i in range(0, int(batch.shape[0]), step)]
        incoming = self._incoming_ranges(runs)
        merged = [_BatchCounts() for _ in self.probes]
        for run in runs:
            results = self.session.run(self._outputs, self._feed(run, incoming))
            counted = self._counting.map(count_with_top_edge, results[0::3])
            for counts, bins, range_, amax in zip(
                merged, counted, results[1::3], results[2::3], strict=True
            ):
                counts.add(bins, float(range_), float(amax))
            del results  # this run's indices go before the next run allocates its own
        for probe, counts in zip(self.probes, merged, strict=True):
            try:
                self.histograms[probe.tensor].add(*counts.batch())
            except ValueError as exc:
                raise UserError(
                    f"calibration batch {self.batches + 1}: tensor {probe.tensor} holds "
                    f"non-finite values ({exc}); check the model and the calibration data"
                ) from exc
        self.images += int(batch.shape[0])
        self.batches += 1

    def _feed(
        self, run: npt.NDArray[np.float32], incoming: list[float]
    ) -> dict[str, npt.NDArray[np.float32]]:
        feed = {self.input_name: run}
        for probe, range_ in zip(self.probes, incoming, strict=True):
            feed[probe.range_in] = np.asarray(range_, np.float32)
        return feed

    def _incoming_ranges(self, runs: list[npt.NDArray[np.float32]]) -> list[float]:
        """Each probe's range before this batch; where there is none yet, the batch's max."""
        incoming = [self.histograms[probe.tensor].range for probe in self.probes]
        if all(range_ > 0 for range_ in incoming) or len(runs) == 1:
            return incoming
        maxima = [p.amax for p in self.probes]
        batch_max = [0.0] * len(self.probes)
        for run in runs:
            found = self.session.run(maxima, self._feed(run, incoming))
            batch_max = [max(a, float(b)) for a, b in zip(batch_max, found, strict=True)]
        return [r if r > 0 else m for r, m in zip(incoming, batch_max, strict=True)]


class _BatchCounts:
    """One probe's counts over the runs of a batch, merged at the batch's range (`widen`)."""

    def __init__(self) -> None:
        self.runs: list[tuple[Counts, float]] = []
        self.amax = 0.0

    def add(self, counts: Counts, range_: float, amax: float) -> None:
        self.runs.append((counts, range_))
        self.amax = max(self.amax, amax)

    def batch(self) -> tuple[Counts, float, float]:
        """(counts over BINS at the batch's range, that range, the batch's max |x|)."""
        top = max(range_ for _, range_ in self.runs)
        total = np.zeros(BINS, dtype=np.int64)
        for counts, range_ in self.runs:
            doublings = round(math.log2(top / range_)) if range_ > 0 and top > 0 else 0
            total += widen(counts, doublings)
        return total, top, self.amax


def collect(
    collector: RangeCollector,
    batches: Iterable[npt.NDArray[np.float32]],
    total_images: int,
    progress: bool = True,
) -> Collected:
    """Feed every batch to `collector`, with a progress bar in images per second."""
    start = time.perf_counter()
    with tqdm(
        total=total_images,
        unit="img",
        desc="INT8 calibration",
        disable=not progress,
        mininterval=1.0,
        dynamic_ncols=True,
    ) as bar:
        for batch in batches:
            collector.update(batch)
            bar.update(int(batch.shape[0]))
    seconds = time.perf_counter() - start
    return Collected(
        histograms=collector.histograms,
        images=collector.images,
        batches=collector.batches,
        seconds=seconds,
    )
