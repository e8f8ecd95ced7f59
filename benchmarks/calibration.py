"""Benchmark: our streaming INT8 calibration vs pure forward passes vs ONNX Runtime's calibrator.

    .venv/bin/python benchmarks/calibration.py                 # N = 16 and 500, ORT at 4 and 16
    .venv/bin/python benchmarks/calibration.py --n 16 100 --ort-n 4   # a quicker look

The BpNet model (TAO's default, seeded weights) at 320x448, sample images of
several sizes (`bpnet-sample`'s generator), batch size 4 by default. For each
N it measures, on the same N images:

- forward: ONNX Runtime running the FP32 model over the preprocessed batches
  (read from a tensorfile; only `session.run` is timed): the floor any
  calibration pays;
- ours: `run_calibration` from the image directory (decode, preprocess,
  forward passes with histograms, thresholds, cal.bin), timed whole and as
  its forward-pass loop alone;
- previous (the largest N by default): the same, with the collector as it
  was before issue 32 (`previous_collector` below: one run per batch, all
  its outputs fetched at once), kept here only to measure against and to
  check that cal.bin is byte-identical on the same images (a digest
  committed from another machine could not be: the float sums of the
  forward passes, and so the bins, depend on the CPU's kernels);
- ort: `onnxruntime.quantization.quantize_static` with entropy calibration
  (QDQ, the same int8 settings) fed the same batches (small N only: it keeps
  every activation of every image in memory).

Each measurement runs in its own child process, started by this one command,
so that peak memory growth (RSS sampled every 20 ms by a thread, since
tracemalloc cannot see ONNX Runtime's C++ allocations) is not flattered by
memory an earlier measurement freed. Goals (issue 32): at N >= 500, ours
<= 1.1x the forward passes and peak memory <= +600 MB, with cal.bin
byte-identical to the previous method's; and our peak memory at N=500
within 10% of N=16.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bodypose_exporter.calibration.collect import RangeCollector

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "exporter_image"))


class PeakRss:
    """Samples this process's RSS in a thread; `growth` is the peak above the start."""

    def __init__(self, interval: float = 0.02) -> None:
        import psutil

        self._process = psutil.Process()
        self._interval = interval
        self.start = self.peak = self._process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            time.sleep(self._interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def growth_mb(self) -> float:
        return float(self.peak - self.start) / 2**20


# ---------------------------------------------------------------- child steps


def step_model(args: argparse.Namespace) -> dict[str, Any]:
    from bodypose_exporter.convert.keras_to_onnx import keras_to_onnx
    from bodypose_exporter.model.bpnet import build_bpnet
    from bodypose_exporter.model.deploy import build_deploy_model

    deploy = build_deploy_model(build_bpnet(seed=0), args.height, args.width)
    info = keras_to_onnx(deploy, Path(args.model))
    return {"outputs": info.output_names}


def step_data(args: argparse.Namespace) -> dict[str, Any]:
    from bodypose_exporter.calibration.batches import ImageBatches
    from bodypose_exporter.calibration.images import list_images
    from bodypose_exporter.calibration.tensorfile import TensorFileWriter
    from bodypose_exporter.stages.sample import write_sample_images

    images = Path(args.images)
    have = len(list(images.glob("*"))) if images.exists() else 0
    if have < args.count:
        write_sample_images(images, args.count, seed=0)
    listing = list_images(images, seed=0)
    with (
        ImageBatches(listing.images, args.batch_size, (args.height, args.width)) as source,
        TensorFileWriter(Path(args.tensorfile)) as writer,
    ):
        for batch in source.batches(args.count // args.batch_size):
            writer.write(batch)
    return {"images": args.count}


def _batches(args: argparse.Namespace) -> Iterator[Any]:
    from bodypose_exporter.calibration.tensorfile import read_batches

    yield from read_batches(Path(args.tensorfile), args.count // args.batch_size, args.batch_size)


def step_forward(args: argparse.Namespace) -> dict[str, Any]:
    import onnxruntime as ort

    session = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    warm = next(_batches(args))
    session.run(None, {name: warm})
    seconds = cpu = 0.0
    with PeakRss() as rss:
        for batch in _batches(args):
            t0, c0 = time.perf_counter(), time.process_time()
            session.run(None, {name: batch})
            seconds += time.perf_counter() - t0
            cpu += time.process_time() - c0
    return {"seconds": seconds, "cpu": cpu, "peak_mb": rss.growth_mb}


def _calibrate(args: argparse.Namespace) -> dict[str, Any]:
    from bodypose_exporter.stages.local_calibration import CalibrationOptions, run_calibration

    with tempfile.TemporaryDirectory(prefix="bench-cal-") as tmp:
        options = CalibrationOptions(
            cache_file=Path(tmp) / "cal.bin",
            batches=args.count // args.batch_size,
            batch_size=args.batch_size,
            input_hw=(args.height, args.width),
            image_dir=Path(args.images),
            write_qdq=False,
            held_back=0,
            trt_version="10.3.0",  # fixed, so that the digest depends on the ranges alone
            progress=False,
        )
        t0, c0 = time.perf_counter(), time.process_time()
        with PeakRss() as rss:
            result = run_calibration(Path(args.model), options, Path(tmp))
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        digest = hashlib.sha256(options.cache_file.read_bytes()).hexdigest()
    return {
        "seconds": seconds,
        "cpu": cpu,
        "loop_seconds": result.seconds["calibrate"],
        "peak_mb": rss.growth_mb,
        "tensors": result.tensors,
        "measured": result.measured_tensors,
        "cal_bin_sha256": digest,
    }


def step_ours(args: argparse.Namespace) -> dict[str, Any]:
    return _calibrate(args)


def previous_collector() -> type[RangeCollector]:
    """The collector as it was before issue 32 (main at commit 25544d2): every image of a batch
    in one run, all of its outputs fetched by `session.run` at once."""
    import numpy as np

    from bodypose_exporter.calibration.collect import RangeCollector
    from bodypose_exporter.calibration.histogram import count_indices

    class WholeBatchCollector(RangeCollector):
        def update(self, batch: Any) -> None:
            feed = {self.input_name: batch}
            for probe in self.probes:
                feed[probe.range_in] = np.asarray(self.histograms[probe.tensor].range, np.float32)
            results = self.session.run(self._outputs, feed)
            for i, probe in enumerate(self.probes):
                index, range_, amax = results[3 * i : 3 * i + 3]
                self.histograms[probe.tensor].add(count_indices(index), float(range_), float(amax))
            self.images += int(batch.shape[0])
            self.batches += 1

    return WholeBatchCollector


def step_previous(args: argparse.Namespace) -> dict[str, Any]:
    """`run_calibration` with the collector as it was before issue 32."""
    from bodypose_exporter.stages import local_calibration

    local_calibration.RangeCollector = previous_collector()  # type: ignore[attr-defined]
    return _calibrate(args)


def step_ort(args: argparse.Namespace) -> dict[str, Any]:
    import onnxruntime.quantization as ortq

    batches = list(_batches(args))

    class Reader(ortq.CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self._items = iter(batches)

        def get_next(self) -> dict[str, Any] | None:
            batch = next(self._items, None)
            return None if batch is None else {"input_1:0": batch}

    with tempfile.TemporaryDirectory(prefix="bench-ort-") as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        with PeakRss() as rss:
            ortq.quantize_static(
                args.model,
                str(Path(tmp) / "qdq.onnx"),
                Reader(),
                quant_format=ortq.QuantFormat.QDQ,
                per_channel=True,
                activation_type=ortq.QuantType.QInt8,
                weight_type=ortq.QuantType.QInt8,
                calibrate_method=ortq.CalibrationMethod.Entropy,
                extra_options={"ActivationSymmetric": True, "WeightSymmetric": True},
            )
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"seconds": seconds, "cpu": cpu, "peak_mb": rss.growth_mb}


STEPS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "model": step_model,
    "data": step_data,
    "forward": step_forward,
    "ours": step_ours,
    "previous": step_previous,
    "ort": step_ort,
}


# ---------------------------------------------------------------- orchestration


def _child(args: argparse.Namespace, step: str, count: int) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--child",
        step,
        "--count",
        str(count),
        "--work",
        str(args.work),
        "--batch-size",
        str(args.batch_size),
        "--height",
        str(args.height),
        "--width",
        str(args.width),
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"benchmark step {step} N={count} failed ({done.returncode})")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["load"] = os.getloadavg()[0]
    return result


def _paths(args: argparse.Namespace) -> None:
    work = Path(args.work)
    args.model = str(work / f"bpnet_{args.height}x{args.width}.onnx")
    args.images = str(work / "images")
    args.tensorfile = str(work / f"images_{args.batch_size}.tensorfile")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, nargs="+", default=[16, 500], help="image counts (ours)")
    p.add_argument(
        "--ort-n", type=int, nargs="*", default=[4, 16], help="image counts for ORT quantize_static"
    )
    p.add_argument(
        "--previous-n",
        type=int,
        nargs="*",
        help="image counts for the collector before issue 32 (default: the largest --n)",
    )
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--height", type=int, default=320)
    p.add_argument("--width", type=int, default=448)
    p.add_argument(
        "--work",
        type=Path,
        default=Path(tempfile.gettempdir()) / "bodypose-calibration-bench",
        help="model, images and tensorfile, kept between runs (default: %(default)s)",
    )
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("--child", choices=sorted(STEPS), help=argparse.SUPPRESS)
    p.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    _paths(args)
    if args.previous_n is None:
        args.previous_n = [max(args.n)]

    if args.child:
        print(json.dumps(STEPS[args.child](args)))
        return 0

    counts = sorted(set(args.n) | set(args.ort_n) | set(args.previous_n))
    for n in counts:
        if n % args.batch_size:
            p.error(f"every N must be a multiple of --batch-size {args.batch_size}; {n} is not")
    Path(args.work).mkdir(parents=True, exist_ok=True)
    if not Path(args.model).exists():
        print(f"building BpNet {args.height}x{args.width} ...", flush=True)
        _child(args, "model", 0)
    print(f"preparing {max(counts)} images and their tensorfile ...", flush=True)
    _child(args, "data", max(counts))

    rows = []
    for n in counts:
        row: dict[str, Any] = {"n": n, "forward": _child(args, "forward", n)}
        if n in args.n:
            row["ours"] = _child(args, "ours", n)
        if n in args.previous_n:
            row["previous"] = _child(args, "previous", n)
        if n in args.ort_n:
            row["ort"] = _child(args, "ort", n)
        rows.append(row)
        _print_row(row)

    _print_goals(rows, args)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


def _versus_forward(label: str, run: dict[str, Any], fwd: dict[str, Any]) -> str:
    line = (
        f" | {label} {run['seconds']:7.1f} s = {run['seconds'] / fwd['seconds']:4.2f}x"
        f" (cpu {run['cpu'] / fwd['cpu']:4.2f}x"
    )
    if "loop_seconds" in run:
        line += f", forward loop alone {run['loop_seconds'] / fwd['seconds']:4.2f}x"
    return line + f"), peak +{run['peak_mb']:5.0f} MB"


def _print_row(row: dict[str, Any]) -> None:
    fwd = row["forward"]
    line = (
        f"N={row['n']:4d}  forward {fwd['seconds']:7.1f} s (cpu {fwd['cpu']:7.1f} s), "
        f"peak +{fwd['peak_mb']:5.0f} MB"
    )
    for key, label in (("ours", "ours"), ("previous", "previous"), ("ort", "ORT entropy")):
        if key in row:
            line += _versus_forward(label, row[key], fwd)
    loads = [row[k]["load"] for k in ("forward", "ours", "previous", "ort") if k in row]
    line += f"  [load avg {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores]"
    print(line, flush=True)


def _print_goals(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    ours = [r for r in rows if "ours" in r]
    if not ours:
        return
    for row in ours:
        if row["n"] < 500 and row is not ours[-1]:
            continue
        n, fwd, run = row["n"], row["forward"], row["ours"]
        before = row.get("previous")
        was = f" (previous method {before['seconds'] / fwd['seconds']:.2f}x)" if before else ""
        print(
            f"goal: N={n} ours <= 1.1x forward passes: {run['seconds'] / fwd['seconds']:.2f}x "
            f"({run['seconds']:.1f} s vs forward {fwd['seconds']:.1f} s){was}"
        )
        was = f" (previous method +{before['peak_mb']:.0f} MB)" if before else ""
        print(
            f"goal: N={n} ours peak <= +600 MB: +{run['peak_mb']:.0f} MB "
            f"(forward passes alone +{fwd['peak_mb']:.0f} MB){was}"
        )
        if before:
            same = run["cal_bin_sha256"] == before["cal_bin_sha256"]
            print(
                f"goal: N={n} cal.bin byte-identical to the previous method's: "
                f"{'yes' if same else 'NO'} (sha256 {run['cal_bin_sha256'][:16]}"
                f"{'' if same else ' vs ' + before['cal_bin_sha256'][:16]})"
            )
    if len(ours) > 1:
        small, big = ours[0], ours[-1]
        ratio = big["ours"]["peak_mb"] / max(small["ours"]["peak_mb"], 1e-9)
        print(
            f"goal: peak memory flat: N={big['n']} +{big['ours']['peak_mb']:.0f} MB vs "
            f"N={small['n']} +{small['ours']['peak_mb']:.0f} MB ({100 * (ratio - 1):+.1f}%)"
        )


if __name__ == "__main__":
    sys.exit(main())
