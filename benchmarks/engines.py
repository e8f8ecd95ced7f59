"""Benchmark: FP32 vs INT8 latency of the ONNX Runtime artifacts our build stage produces.

    .venv/bin/python benchmarks/engines.py                          # 224x320, 288x384, 320x448
    .venv/bin/python benchmarks/engines.py --resolutions 224x320 --runs 20   # a quicker look
    .venv/bin/python benchmarks/engines.py --threads 0 1            # also single-threaded

The CPU targets of an int8 resource deploy the ONNX Runtime artifact, and
int8 is only worth its accuracy cost if it is markedly faster than fp32 on a
CPU with int8 dot-product instructions. Goal (issue 32): int8 at least 3.8x faster than
FP32 on a VNNI CPU, with the int8 artifact inside its verification gate
(`verification/agreement_gates.py`). For each resolution (height x width), in this one
process, the artifacts are made exactly as the product makes them:

- export: the sample BpNet (`bpnet-sample`'s seeded .tlt) through
  `run_export`, giving bpnet_model.onnx and reference.npz;
- calibration: `run_calibration` on N sample images (batch size 1, no
  held-back images), giving cal.bin and the QDQ model;
- build: `run_build` with the onnxruntime backend, fp32 from the ONNX model,
  int8 from the QDQ model and cal.bin, each verified against reference.npz
  with its precision's default gates, as the operator's build Job does
  (`--reference .../reference.npz`). The int8 verdict printed is that
  verification; for comparison the int8 artifact is also verified on 8
  sample images calibration never saw (the basis the int8 gates were set on).
  An int8 artifact that fails its gate is not published, so it is built
  once more with the gates lifted, only to be timed.

Latency: each artifact is opened with the ORT backend's own runner
(`OrtRunner`: default SessionOptions, so optimization level ALL and
`intra_op_num_threads` from the process's CPU budget, its affinity and cgroup
quota (`engines/cpu_budget.py`), unless --threads says otherwise), warmed up,
then `session.run` on one preprocessed sample image
(batch 1) is timed with `time.perf_counter` by `latency.measure_interleaved`,
as the build stage's own int8 check times it: fp32 and int8 in turns (and
which goes first turning too), so that load from other processes falls on
both alike, each turn after a pause and untimed runs that let the other
session's spinning threads go idle. Reported: the median of each, their
ratio fp32/int8, and each one's spread (p90 - p10) / median. Figures are ratios on a
shared machine; absolute milliseconds are only indicative.

On a CPU whose int8 kernels saturate (x86 without VNNI:
`engines/ort/hardware.py`), the product builds its int8 artifact with int7
weights (int8 within [-64, 64], ONNX Runtime's `reduce_range`: the fast u8 x s8
kernels, which cannot saturate on them) and, where that artifact fails its
gates, with uint8 weights; the artifact it would build for a VNNI CPU (int8
weights) is also built, verified and timed here, to show what this CPU would
make of it, and so is the one with the other of int7 and uint8. The
3.8x goal is judged only on a VNNI (or AMX) CPU; on a saturating one the goal
is 1.5x (issue 32), judged for the product's artifact, with the int7
candidate's figure and gates beside it. A machine with VNNI measures the
saturating classes' kernels as `make bench-engines AS_CPU=x86-avx2` (or
x86-avx512; `hack/cpumask/run`).

The int8 artifact's op types (QLinearConv vs float Conv, leftover
QuantizeLinear/DequantizeLinear) are listed, from the saved artifact
(level EXTENDED) and from the graph the runner actually executes (level ALL,
saved to the work directory), since int8 is only fast where the
convolutions really run as int8 kernels.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from benchmarks.workdir import work_dir

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "exporter_image"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SAMPLE_KEY = "nvidia_tlt"
DEFAULT_RESOLUTIONS = ("224x320", "288x384", "320x448")
HELD_OUT_IMAGES = 8
#: int8 over fp32 at batch 1 on a CPU with int8 dot products (issue 32; 3x before it).
VNNI_GOAL = 3.8
#: The same on x86 without VNNI, where the u8 x s8 kernels saturate (issue 32).
SATURATING_GOAL = 1.5

Array = npt.NDArray[np.float32]


@dataclasses.dataclass(frozen=True)
class Built:
    engine: Path
    passed: bool
    figures: dict[str, float]
    failures: tuple[str, ...]
    #: An int8 artifact's weights (`hardware.WEIGHT_KINDS`), as its build recorded them.
    weights: str | None = None


@dataclasses.dataclass(frozen=True)
class Timing:
    threads: int
    fp32_ms: float
    int8_ms: float
    fp32_spread_pct: float
    int8_spread_pct: float
    runs: int

    @property
    def speedup(self) -> float:
        return self.fp32_ms / self.int8_ms


# ---------------------------------------------------------------- artifacts


def parse_resolution(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give HEIGHTxWIDTH, e.g. 224x320") from None
    return height, width


def export(model: Path, out: Path, height: int, width: int) -> Path:
    from bodypose_exporter.stages.export import ExportRequest, InputDims, run_export

    run_export(
        ExportRequest(
            model=str(model),
            key=SAMPLE_KEY,
            output=str(out / "bpnet_model.etlt"),
            dims=InputDims(height, width, 3),
        )
    )
    return out


def calibrate(onnx: Path, images: Path, count: int, out: Path, size: tuple[int, int]) -> Path:
    from bodypose_exporter.stages.local_calibration import CalibrationOptions, run_calibration

    result = run_calibration(
        onnx,
        CalibrationOptions(
            cache_file=out / "cal.bin",
            batches=count,
            batch_size=1,
            input_hw=size,
            image_dir=images,
            held_back=0,
            progress=False,
        ),
        out,
    )
    qdq: Path | None = result.qdq_model
    if qdq is None:
        raise SystemExit("calibration wrote no QDQ model")
    return qdq


def build(
    exported: Path, out: Path, precision: str, size: tuple[int, int], qdq: Path | None
) -> Built:
    """`run_build` as the operator's build Job runs it; the verdict is the product's."""
    from bodypose_exporter.engines.base import EngineOptions
    from bodypose_exporter.stages.build import BuildInputs, BuildStageRequest, run_build
    from bodypose_exporter.verification.agreement_gates import VerificationError

    engine = out / f"bpnet_model.{size[0]}.{size[1]}.{precision}.engine"
    request = BuildStageRequest(
        engine=EngineOptions(backend="onnxruntime", precision=precision),
        engine_file=str(engine),
        inputs=BuildInputs(
            onnx=str(exported / "bpnet_model.onnx"),
            reference=str(exported / "reference.npz"),
            calibration_cache=str(qdq.parent / "cal.bin") if qdq else None,
            qdq_model=str(qdq) if qdq else None,
        ),
    )
    try:
        result = run_build(request)
        verdict = result.verdict
    except VerificationError as exc:
        verdict = exc.verdict
        # Not published when it fails: the same build with the gates lifted, only to time it.
        lifted = tuple((name, 0.0) for name in ("cosine", "peakAgreement"))
        result = run_build(dataclasses.replace(request, gates=lifted, publish_rejected=False))
    # Where the backend wrote it (an onnxruntime artifact is an ONNX model, named .onnx).
    engine = next(Path(a["path"]) for a in result.manifest["artifacts"] if a["kind"] == "engine")
    weights = result.manifest.get("build", {}).get("int8Weights")
    return Built(engine, verdict.passed, verdict.figures, verdict.failures, weights)


def build_for_cpu_class(
    exported: Path,
    cal_bin: Path,
    out: Path,
    size: tuple[int, int],
    cpu_class: str | None,
    weights: str | None = None,
) -> Built:
    """The int8 artifact the product would build for another CPU class (None: this CPU's),
    with the class's weights or `weights`, verified here with the int8 gates."""
    from bodypose_exporter.engines.base import BuildRequest, EngineOptions
    from bodypose_exporter.engines.ort.args import OnnxRuntimeOptions
    from bodypose_exporter.engines.ort.builder import OnnxRuntimeBuilder
    from bodypose_exporter.engines.ort.runner import OrtRunner
    from bodypose_exporter.verification import reference as references
    from bodypose_exporter.verification.verify import verify

    built = OnnxRuntimeBuilder().build(
        BuildRequest(
            EngineOptions(
                precision="int8",
                backend_options=(
                    OnnxRuntimeOptions(int8_instruction_set=cpu_class, int8_weights=weights),
                ),
            ),
            onnx_path=exported / "bpnet_model.onnx",
            engine_path=out / f"bpnet_model.{size[0]}.{size[1]}.int8.{cpu_class or weights}.onnx",
            calibration_cache=cal_bin,
        )
    )
    runner = OrtRunner(built.path, allow_saturating=True)
    try:
        verdict = verify(runner, references.from_npz(exported / "reference.npz"), "int8", {})
    finally:
        runner.close()
    return Built(
        built.path, verdict.passed, verdict.figures, verdict.failures,
        built.details.get("int8Weights"),
    )  # fmt: skip


def verify_on_images(
    engine: Path, onnx: Path, images: Path, size: tuple[int, int]
) -> dict[str, Any]:
    """The int8 artifact against FP32 on sample images calibration never saw."""
    from bodypose_exporter.engines.ort.runner import OrtRunner
    from bodypose_exporter.verification import reference as references
    from bodypose_exporter.verification.verify import verify

    paths = references.image_paths(images, HELD_OUT_IMAGES)
    reference = references.from_images(onnx, paths, *size)
    runner = OrtRunner(engine)
    try:
        verdict = verify(runner, reference, "int8", {})
    finally:
        runner.close()
    return {"passed": verdict.passed, **verdict.figures}


def op_types(model: Path) -> Counter[str]:
    import onnx

    graph = onnx.load(str(model), load_external_data=False).graph
    return Counter(f"{n.domain + '.' if n.domain else ''}{n.op_type}" for n in graph.node)


def runtime_graph(engine: Path, out: Path) -> Path:
    """The graph the runner executes (default level ALL), saved for inspection."""
    import onnxruntime as ort

    from bodypose_exporter.engines.ort.runner import PROVIDERS

    options = ort.SessionOptions()
    options.optimized_model_filepath = str(out)
    options.log_severity_level = 3  # the "hardware specific optimizations" warning
    ort.InferenceSession(str(engine), options, providers=PROVIDERS)
    return out


def describe_ops(counts: Counter[str]) -> str:
    conv = {k: v for k, v in counts.items() if "conv" in k.lower()}
    qdq = {k: v for k, v in counts.items() if k.endswith(("QuantizeLinear", "DequantizeLinear"))}
    shown = {**conv, **qdq}
    return ", ".join(f"{v} {k}" for k, v in sorted(shown.items())) or "no Conv/QDQ ops"


# ---------------------------------------------------------------- timing


def sample_input(images: Path, size: tuple[int, int]) -> Array:
    from bodypose_exporter.verification import reference as references

    first = references.image_paths(images, 1)
    return np.ascontiguousarray(references.preprocess_images(first, *size), dtype=np.float32)


def time_pair(fp32: Path, int8: Path, batch: Array, runs: int, threads: int) -> Timing:
    """Both artifacts timed in turns by `latency.measure_interleaved`, as the build stage's
    own int8-against-fp32 check times them."""
    from bodypose_exporter.engines.ort.runner import OrtRunner
    from bodypose_exporter.verification import latency

    runners = {
        "fp32": OrtRunner(fp32, threads),
        # Also an artifact built for another CPU class, to time what this CPU makes of it.
        "int8": OrtRunner(int8, threads, allow_saturating=True),
    }
    try:
        # 120 s, not a build's 10: the default 50 runs of each at 320x448 (1.6 s a pair
        # here) fit, and the warm-up still stops (at 30 s each) where it never settles.
        timed = latency.measure_interleaved(runners, batch[0], runs=runs, budget=120.0)
    finally:
        for r in runners.values():
            r.close()
    return Timing(
        threads,
        timed["fp32"]["medianMs"],
        timed["int8"]["medianMs"],
        timed["fp32"]["spreadPct"],
        timed["int8"]["spreadPct"],
        timed["fp32"]["runs"],
    )


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--resolutions",
        type=parse_resolution,
        nargs="+",
        default=[parse_resolution(r) for r in DEFAULT_RESOLUTIONS],
        metavar="HxW",
        help=f"input sizes, height x width (default: {' '.join(DEFAULT_RESOLUTIONS)})",
    )
    p.add_argument("--runs", type=int, default=50, help="timed runs of each (default: 50)")
    p.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[0],
        help="intra-op threads to time with; 0 is the runner's default, the process's CPU "
        "budget: min(affinity, cgroup quota) (default: 0)",
    )
    p.add_argument(
        "--calibration-images", type=int, default=16, help="images to calibrate on (default: 16)"
    )
    p.add_argument(
        "--work-dir", type=Path, help="keep the artifacts here (default: a temporary directory)"
    )
    args = p.parse_args(argv)
    if args.runs < 1 or args.calibration_images < 1:
        p.error("--runs and --calibration-images must be at least 1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    with work_dir(args.work_dir, "bench-engines-") as work:
        return run(args, work)


def run(args: argparse.Namespace, work: Path) -> int:
    import onnxruntime as ort

    from bodypose_exporter.engines.ort.hardware import describe as cpu_description
    from bodypose_exporter.engines.ort.hardware import int8_weights, saturates
    from bodypose_exporter.stages.sample import write_sample_images, write_sample_model

    work.mkdir(parents=True, exist_ok=True)
    cpu = cpu_description()
    cpu_class = cpu["int8InstructionSet"]
    saturating = saturates(cpu_class)
    print(
        f"CPU {cpu['cpuModel']}, {cpu['logicalCpus']} logical CPUs, int8 dot product: "
        f"{cpu['int8DotProduct']} ({' '.join(cpu['instructionSets'])}); int8 class "
        f"{cpu_class}: artifacts take {int8_weights(cpu_class)} weights; "
        f"onnxruntime {ort.__version__}",
        flush=True,
    )
    model = work / "bpnet_model.tlt"
    if not model.exists():
        write_sample_model(model, SAMPLE_KEY)
    cal_images, held_out = work / "images", work / "held_out"
    if not cal_images.exists():
        write_sample_images(cal_images, args.calibration_images, seed=0)
    if not held_out.exists():
        write_sample_images(held_out, HELD_OUT_IMAGES, seed=1)

    rows: list[tuple[tuple[int, int], Built, dict[str, Any], list[Timing]]] = []
    #: Saturating CPUs: (threads, weights, speedup, gate passed) of the other weights.
    candidates: list[tuple[int, str, float, bool]] = []
    for size in args.resolutions:
        name = f"{size[0]}x{size[1]}"
        here = work / name
        t0 = time.perf_counter()
        exported = here / "export"
        if not (exported / "bpnet_model.onnx").exists():
            export(model, exported, *size)
        qdq = here / "calibration" / "bpnet_model_int8_qdq.onnx"  # run_calibration's name
        if not qdq.exists():
            qdq = calibrate(
                exported / "bpnet_model.onnx", cal_images, args.calibration_images, qdq.parent, size
            )
        fp32 = build(exported, here / "fp32", "fp32", size, None)
        int8 = build(exported, here / "int8", "int8", size, qdq)
        on_images = verify_on_images(int8.engine, exported / "bpnet_model.onnx", held_out, size)
        print(
            f"{name}: artifacts in {time.perf_counter() - t0:.0f} s; fp32 verification "
            f"{'passed' if fp32.passed else 'FAILED'} "
            f"(maxAbsDiff {fp32.figures['maxAbsDiff']:.2g})",
            flush=True,
        )
        print(f"  int8 artifact (EXTENDED): {describe_ops(op_types(int8.engine))}")
        executed = runtime_graph(int8.engine, here / "int8" / "runtime_all.onnx")
        print(f"  int8 as executed (ALL):   {describe_ops(op_types(executed))}")
        fp32_executed = runtime_graph(fp32.engine, here / "fp32" / "runtime_all.onnx")
        print(f"  fp32 as executed (ALL):   {describe_ops(op_types(fp32_executed))}", flush=True)

        batch = sample_input(held_out, size)
        timings = [time_pair(fp32.engine, int8.engine, batch, args.runs, t) for t in args.threads]
        rows.append((size, int8, on_images, timings))
        for timing in timings:
            print(row_line(size, int8, on_images, timing), flush=True)
        if saturating:
            print(f"  the product's int8 artifact has {int8.weights} weights", flush=True)
            vnni = build_for_cpu_class(
                exported, qdq.parent / "cal.bin", here / "int8-vnni", size, "x86-vnni"
            )
            for t in (
                time_pair(fp32.engine, vnni.engine, batch, args.runs, t) for t in args.threads
            ):
                print(
                    f"{name} threads {t.threads or 'default'}: the artifact for x86-vnni (int8 "
                    f"weights) run on this {cpu_class} CPU: {t.int8_ms:7.1f} ms (fp32 "
                    f"{t.fp32_ms:.1f} ms), cosine {vnni.figures['cosine']:.4f}, peakAgreement "
                    f"{vnni.figures['peakAgreement']:.3f} (reference.npz; gate "
                    f"{'passed' if vnni.passed else 'FAILED'}); the product refuses to run it "
                    "here",
                    flush=True,
                )
            # The other weights no saturating kernel overflows: int7 (fast u8 x s8 kernels)
            # where the build fell back to uint8, uint8 (u8u8 kernels) where int7 passed.
            kind = "uint8" if int8.weights == "int7" else "int7"
            alt = build_for_cpu_class(
                exported, qdq.parent / "cal.bin", here / f"int8-{kind}", size, None, kind
            )
            for t in (
                time_pair(fp32.engine, alt.engine, batch, args.runs, t) for t in args.threads
            ):
                candidates.append((t.threads, kind, t.speedup, alt.passed))
                print(
                    f"{name} threads {t.threads or 'default'}: the artifact with {kind} weights "
                    f"on this {cpu_class} CPU: {t.int8_ms:7.1f} ms (fp32 {t.fp32_ms:.1f} ms) "
                    f"speedup {t.speedup:4.2f}x (spread {t.int8_spread_pct:.0f}%), cosine "
                    f"{alt.figures['cosine']:.4f}, peakAgreement "
                    f"{alt.figures['peakAgreement']:.3f} (reference.npz; gate "
                    f"{'passed' if alt.passed else 'FAILED'})",
                    flush=True,
                )

    print("\nsummary:")
    for size, int8, on_images, timings in rows:
        for timing in timings:
            print(row_line(size, int8, on_images, timing))
    for threads in args.threads:
        worst = min(t.speedup for _, _, _, ts in rows for t in ts if t.threads == threads)
        gates_ok = all(b.passed for _, b, _, _ in rows)
        verdict = (
            ("met" if worst >= VNNI_GOAL else "NOT met")
            if cpu["int8DotProduct"]
            else f"not judged on this {cpu_class} CPU (no int8 dot-product instructions)"
        )
        print(
            f"goal (threads {threads or 'default'}): int8 >= {VNNI_GOAL}x faster than fp32 on a "
            "VNNI CPU: "
            f"worst speedup {worst:.2f}x -> {verdict}; int8 gates "
            f"(reference.npz) {'all passed' if gates_ok else 'NOT all passed'}  "
            f"[load avg {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs]"
        )
        if saturating:
            print(saturating_goal_line(rows, candidates, threads, cpu_class))
    return 0


def saturating_goal_line(
    rows: list[tuple[tuple[int, int], Built, dict[str, Any], list[Timing]]],
    candidates: list[tuple[int, str, float, bool]],
    threads: int,
    cpu_class: str,
) -> str:
    """Issue 32's goal where the kernels saturate, for the product's artifact at each size
    (inside its gates, or it is not published), the other weights' figures beside it."""
    timed = [
        (f"{size[0]}x{size[1]} {built.weights} {t.speedup:.2f}x", t.speedup)
        for size, built, _, ts in rows for t in ts if t.threads == threads
    ]  # fmt: skip
    worst = min(s for _, s in timed)
    others = ", ".join(
        f"{kind} {s:.2f}x ({'passed' if ok else 'FAILED'})"
        for n, kind, s, ok in candidates if n == threads
    )  # fmt: skip
    return (
        f"goal (threads {threads or 'default'}): int8 >= {SATURATING_GOAL}x faster than fp32 "
        f"on this {cpu_class} CPU (no VNNI): the product's artifacts "
        f"{'; '.join(t for t, _ in timed)} -> {'met' if worst >= SATURATING_GOAL else 'NOT met'}"
        f"; the other weights: {others}"
    )


def row_line(size: tuple[int, int], int8: Built, on_images: dict[str, Any], t: Timing) -> str:
    gate = "passed" if int8.passed else "FAILED " + "; ".join(int8.failures)
    return (
        f"{size[0]}x{size[1]} threads {t.threads or 'default'}: fp32 {t.fp32_ms:7.1f} ms  "
        f"int8 {t.int8_ms:7.1f} ms  speedup {t.speedup:4.2f}x (spread fp32 "
        f"{t.fp32_spread_pct:.0f}%, int8 {t.int8_spread_pct:.0f}%, {t.runs} runs each) | "
        f"int8 gate {gate}: cosine {int8.figures['cosine']:.4f}, peakAgreement "
        f"{int8.figures['peakAgreement']:.3f} (reference.npz); on {HELD_OUT_IMAGES} unseen "
        f"images cosine {on_images['cosine']:.4f}, peakAgreement "
        f"{on_images['peakAgreement']:.3f}"
    )


if __name__ == "__main__":
    sys.exit(main())
