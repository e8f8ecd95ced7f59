"""Benchmark: TAO's resolution table, measured here: latency and AP per resolution and precision.

    .venv/bin/python benchmarks/resolutions.py              # 224x320, 288x384, 320x448; fp32, int8
    .venv/bin/python benchmarks/resolutions.py --plot out/resolutions   # also the plot

TAO's BodyPoseNet guide chooses the input resolution from one static table
of runtimes on a GeForce RTX 2080 and a Jetson AGX (FP16 and INT8, batch 1)
and the advice that medium-size people gain AP from the larger inputs. This
makes the same table for this machine's CPU pool (ONNX Runtime, the
artifacts the product builds for a `backend: onnxruntime` target): the
trained sample exported at the three resolutions, fp32 and int8, each
artifact built by the build stage, timed by the build stage's own latency
measurement (`verification.latency`: the engine alone, batch 1, warmed up
until its median settles), fp32 and int8 of one resolution interleaved run
by run so that the shared node's load falls on both alike, each figure with
its 10th-90th percentile range and spread, and
evaluated on the sample's drawings (OKS AP, APm; the drawings are 192x256,
so every resolution letterboxes them as TAO's inferencer does). The devices
differ, so each column is also given as a ratio to its 224x320 cell: the
shapes compare where the absolute numbers cannot. TAO's figures are quoted
from its guide (as the issue that asked for this table lists them); ours are
measured in this run. Goal: the table and the plot exist; no target.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.workdir import work_dir

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "exporter_image"), str(ROOT / "operator")]

KEY = "nvidia_tlt"
SIZES = ((224, 320), (288, 384), (320, 448))
#: TAO's BodyPoseNet guide, milliseconds at batch 1: (device, precision) -> by resolution.
TAO = {
    ("RTX 2080", "fp16"): {(224, 320): 2.27, (288, 384): 2.58, (320, 448): 3.13},
    ("RTX 2080", "int8"): {(224, 320): 1.33, (288, 384): 1.56, (320, 448): 1.80},
    ("Jetson AGX", "fp16"): {(224, 320): 10.1, (288, 384): 12.8, (320, 448): 18.8},
    ("Jetson AGX", "int8"): {(224, 320): 5.07, (288, 384): 6.38, (320, 448): 8.90},
}


def artifacts(sample: Any, size: tuple[int, int], work: Path) -> dict[str, Path]:
    """The export at `size` (int8: calibrated on the sample's calibration drawings) and the
    ONNX Runtime fp32 and int8 builds, verified; their manifests' directories."""
    from bodypose_exporter.engines.base import EngineOptions
    from bodypose_exporter.stages.build import BuildInputs, BuildStageRequest, run_build
    from bodypose_exporter.stages.calibrate import CalibrationRequest
    from bodypose_exporter.stages.export import ExportRequest, InputDims, run_export

    out = work / f"{size[0]}x{size[1]}"
    run_export(ExportRequest(
        model=str(sample.model), key=KEY, output=str(out / "bpnet_model.etlt"),
        dims=InputDims(size[0], size[1], 3), data_type="int8",
        calibration=CalibrationRequest(cache_file=str(out / "scratch.cal.bin"),
                                       image_dir=str(sample.calibration_images),
                                       batches=6, batch_size=2, method="percentile"),
    ))  # fmt: skip
    built = {}
    for precision in ("fp32", "int8"):
        int8 = precision == "int8"
        run_build(BuildStageRequest(
            engine=EngineOptions(backend="onnxruntime", precision=precision, max_batch_size=4),
            engine_file=str(out / precision / f"bpnet_model.{size[0]}.{size[1]}.{precision}.onnx"),
            inputs=BuildInputs(
                onnx=str(out / "bpnet_model.onnx"), reference=str(out / "reference.npz"),
                calibration_cache=str(out / "cal.bin") if int8 else None,
                qdq_model=str(out / "bpnet_model.qdq.onnx") if int8 else None,
            ),
        ))  # fmt: skip
        built[precision] = out / precision
    return built


def spread(figures: dict[str, Any]) -> str:
    """`12.3 ms (p10 12.0-p90 13.1, spread 9%, 40 runs)`: a median with its range."""
    return (f"{figures['medianMs']:.1f} ms (p10 {figures['p10Ms']:.1f}-p90 "
            f"{figures['p90Ms']:.1f}, spread {figures['spreadPct']:.0f}%, "
            f"{figures['runs']} runs)")  # fmt: skip


def interleaved(engines: dict[str, Path], size: tuple[int, int], runs: int) -> dict[str, Any]:
    """Batch-1 figures of one resolution's artifacts, timed in turns on one sample."""
    import numpy as np

    from bodypose_exporter.engines.registry import backend_by_name
    from bodypose_exporter.verification import latency

    backend = backend_by_name("onnxruntime")
    runners = {precision: backend.load(path) for precision, path in engines.items()}
    try:
        sample = np.random.default_rng(0).random((*size, 3), dtype=np.float32)
        return latency.measure_interleaved(runners, sample, runs=runs)
    finally:
        for runner in runners.values():
            runner.close()


def monotonic(precision: str, cells: list[tuple[tuple[int, int], dict[str, float]]]) -> str:
    """Whether the medians grow with the pixels, and for each step that does not, whether
    the two figures' p10-p90 ranges overlap (then the step is within the node's noise)."""
    steps = []
    for (small, a), (large, b) in itertools.pairwise(cells):
        if b["ms"] < a["ms"]:
            overlap = b["p90"] >= a["p10"]
            why = "ranges overlap: within the noise" if overlap else "ranges apart"
            steps.append(f"{large[0]}x{large[1]} faster than {small[0]}x{small[1]} ({why})")
    return f"monotonic in the pixels, {precision}: " + (
        "yes" if not steps else "no, " + "; ".join(steps)
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--plot", type=Path, metavar="PREFIX", help="write PREFIX.png and .svg")
    p.add_argument("--images", type=int, default=40, help="evaluation drawings (default: 40)")
    p.add_argument("--work-dir", type=Path, help="keep the artifacts here")
    p.add_argument("--runs", type=int, default=60,
                   help="timed batch-1 runs of each, interleaved (default: 60)")  # fmt: skip
    p.add_argument(
        "--sizes", nargs="+", default=[f"{h}x{w}" for h, w in SIZES], metavar="HxW",
        help="resolutions, among TAO's three (default: all three)",
    )  # fmt: skip
    args = p.parse_args(argv)
    known = {f"{h}x{w}": (h, w) for h, w in SIZES}
    if unknown := [s for s in args.sizes if s not in known]:
        p.error(f"--sizes {' '.join(unknown)}: TAO's table has {', '.join(known)} only")
    args.sizes = [known[s] for s in args.sizes]
    with work_dir(args.work_dir, "bench-resolutions-") as work:
        return run(args, work)


def run(args: argparse.Namespace, work: Path) -> int:
    import json

    from bodypose_exporter.engines.ort.hardware import describe
    from bodypose_exporter.engines.registry import ONNX_REFERENCE
    from bodypose_exporter.evaluation.artifact_ap import evaluate_artifact
    from bodypose_exporter.evaluation.sources import open_set
    from bodypose_exporter.stages.sample import write_trained_sample
    from bodypose_operator.report import Row, markdown, plot

    cpu = describe()
    print(f"CPU {cpu['cpuModel']}, {cpu['logicalCpus']} logical CPUs, int8 class "
          f"{cpu['int8InstructionSet']}; ONNX Runtime artifacts, batch 1", flush=True)  # fmt: skip
    started = time.perf_counter()
    sample = write_trained_sample(work / "sample", KEY, images=args.images)
    evaluation_set = open_set(str(sample.annotations), str(sample.images), work / "eval")
    cells: dict[tuple[tuple[int, int], str], dict[str, float]] = {}
    rows = []
    sizes = args.sizes
    for size in sizes:
        engines = {}
        for precision, where in artifacts(sample, size, work / "built").items():
            manifest = json.loads((where / "manifest.json").read_text())
            engines[precision] = (
                Path(next(a["path"] for a in manifest["artifacts"] if a["kind"] == "engine")),
                manifest["latency"],
            )
        batch1 = interleaved({p: path for p, (path, _) in engines.items()}, size, args.runs)
        for precision, (engine, timed) in engines.items():
            figures = evaluate_artifact(ONNX_REFERENCE, engine, evaluation_set, *size)
            one = batch1[precision]
            cells[(size, precision)] = {"ms": one["medianMs"], "p10": one["p10Ms"],
                                        "p90": one["p90Ms"], "ap": figures.ap * 100,
                                        "apm": figures.apm * 100}  # fmt: skip
            rows.append(Row(
                resource=f"{size[0]}x{size[1]}", height=size[0], width=size[1],
                precision=precision, target="this CPU",
                batch1_median=one["medianMs"], batch1_p90=one["p90Ms"],
                batch_max_median=timed["batchMax"]["medianMs"],
                batch_max=timed["batchMax"]["batch"],
                throughput=timed["batchMax"]["imagesPerSecond"], ap=figures.ap * 100,
                ap_m=figures.apm * 100, ap_l=figures.apl * 100, ap_drop=None,
            ))  # fmt: skip
            ap, apm = figures.ap * 100, figures.apm * 100
            print(f"{size[0]}x{size[1]} {precision}: {spread(one)}, AP {ap:.2f}, APm {apm:.2f}"
                  f" (the build's own timing: median {timed['batch1']['medianMs']:.1f} ms)",
                  flush=True)  # fmt: skip
    print(f"\nartifacts, timings and evaluations in {time.perf_counter() - started:.0f} s\n")
    print(markdown(rows))
    print("batch-1 latency, ratio to 224x320 in each column (TAO's figures from its guide):\n")
    columns = [(f"this CPU {p}", {s: cells[(s, p)]["ms"] for s in sizes}) for p in ("fp32", "int8")]
    columns += [(f"{d} {p}", v) for (d, p), v in TAO.items()]
    print("| resolution | " + " | ".join(name for name, _ in columns) + " |")
    print("|" + " --- |" * (len(columns) + 1))
    for size in sizes:
        shown = [f"{v[size]:.2f} ms ({v[size] / v[sizes[0]]:.2f}x)" for _, v in columns]
        print(f"| {size[0]}x{size[1]} | " + " | ".join(shown) + " |")
    print()
    for precision in ("fp32", "int8"):
        print(monotonic(precision, [(s, cells[(s, precision)]) for s in sizes]))
    gain = {p: cells[(sizes[-1], p)]["apm"] - cells[(sizes[0], p)]["apm"] for p in ("fp32", "int8")}
    first, last = (f"{h}x{w}" for h, w in (sizes[0], sizes[-1]))
    print(f"\nAPm from {first} to {last}: fp32 {gain['fp32']:+.2f}, int8 {gain['int8']:+.2f} AP "
          "points (TAO's advice, on COCO: +7 to +10 per step for medium people)")  # fmt: skip
    if args.plot is not None:
        plot(rows, args.plot, title="Trained sample on this CPU: AP against batch-1 latency")
        print(f"plot: {args.plot.with_suffix('.png')}, {args.plot.with_suffix('.svg')}")
    print("goal: the table for this machine's CPU pool beside TAO's, as ratios: printed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
