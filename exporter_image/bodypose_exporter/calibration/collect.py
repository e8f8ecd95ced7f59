"""Streaming range collection: forward passes, with each tensor's histogram updated per batch.

Nothing of a batch survives it but the counts: memory is the model, ONNX
Runtime's buffers for one batch, a few prefetched input batches and 2048
int64 counts per measured tensor, whatever the number of images.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
from tqdm import tqdm

from bodypose_exporter.calibration.augment import augment
from bodypose_exporter.calibration.histogram import AbsHistogram, count_indices
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
    """Runs the calibration model on batches and keeps one |x| histogram per measured tensor."""

    def __init__(
        self,
        model: onnx.ModelProto,
        tensors: CalibrationTensors,
        session_options: ort.SessionOptions | None = None,
    ) -> None:
        self.input_name = model_input(model).name
        calibration_model, self.probes = augment(model, tensors)
        if session_options is None:
            session_options = ort.SessionOptions()
            # ONNX Runtime's memory pattern plans one block for every intermediate of
            # the first run; with a probe hanging off each activation that block held
            # about twice what the tensors alive at any moment need (3.5 GB instead of
            # 1.9 GB for BpNet at 320x448, batch 8), and it bought no speed we could see.
            session_options.enable_mem_pattern = False
        self.session = ort.InferenceSession(
            calibration_model.SerializeToString(),
            sess_options=session_options,
            providers=["CPUExecutionProvider"],
        )
        self.histograms = {probe.tensor: AbsHistogram() for probe in self.probes}
        self._outputs = [name for p in self.probes for name in (p.index, p.range_out, p.amax)]
        self.images = 0
        self.batches = 0

    def update(self, batch: npt.NDArray[np.float32]) -> None:
        feed: dict[str, npt.NDArray[np.float32]] = {self.input_name: batch}
        for probe in self.probes:
            feed[probe.range_in] = np.asarray(self.histograms[probe.tensor].range, np.float32)
        results = self.session.run(self._outputs, feed)
        for i, probe in enumerate(self.probes):
            index, range_, amax = results[3 * i : 3 * i + 3]
            try:
                self.histograms[probe.tensor].add(count_indices(index), float(range_), float(amax))
            except ValueError as exc:
                raise UserError(
                    f"calibration batch {self.batches + 1}: tensor {probe.tensor} holds "
                    f"non-finite values ({exc}); check the model and the calibration data"
                ) from exc
        self.images += int(batch.shape[0])
        self.batches += 1


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
