"""Benchmark: OKS keypoint AP of the trained sample per precision, and each one's drop.

    make bench-accuracy
    .venv/bin/python benchmarks/accuracy.py --images 100      # a larger evaluation set

The figure the AP gate (`evaluation/ap_gate.py`) is about: how many AP points
an engine loses against the FP32 model on the same images with the same
decoding. The model is `bpnet sample --trained`'s (a narrow BpNet trained on
drawn skeletons; its weights are committed and copied into
~/.cache/bodypose-export/samples/ on first use, trained anew only after a change
to the training code). In this one process, with
the steps of tests/evaluation/trained.py (the accuracy tests' own):

- export: `run_export` at the training size (192x256) with int8 calibration
  (`--batches 6 --batch_size 4` of the calibration drawings), giving the ONNX
  model, reference.npz, cal.bin and the QDQ model, as `bpnet-export` does;
- engines: `run_build` with the onnxruntime backend, as the operator's CPU
  build Jobs do: fp32, and int8 from the QDQ model. ONNX Runtime's CPU
  provider has no FP16 kernels (its fp16 artifact is the FP32 graph), so
  fp16 is also measured emulated: the FP32 ONNX model with its weights and
  every activation rounded to FP16 (a Cast to float16 and back after each
  node), the rounding a GPU engine's FP16 tensors apply;
- two engines that must fail the gate, for contrast: int8 calibrated on
  blank (grey) images, and fp32 with noise on the last convolutions' kernels;
- each evaluated with `evaluation.evaluate_set` (TAO's strict-mode input,
  bottom-up decoding, pycocotools) on the evaluation drawings, and judged by
  `check_ap_drop` with the precision's default limit.

The FP32 ONNX model in ONNX Runtime is the reference (what the export stage
evaluates); the table prints AP, AP50, AP75, APm, APl in AP points.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.workdir import work_dir

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "exporter_image")]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DAMAGE_SIGMA = 0.5  # noise on the last convolutions' kernels, times their standard deviation


def fp16_emulated(onnx_path: Path, out: Path) -> Path:
    """The FP32 model with weights and every node's outputs rounded to FP16 and back."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(onnx_path))
    graph = model.graph
    for init in graph.initializer:
        value = numpy_helper.to_array(init)
        if value.dtype == np.float32:
            rounded = value.astype(np.float16).astype(np.float32)
            init.CopyFrom(numpy_helper.from_array(rounded, init.name))
    nodes = []
    for node in graph.node:
        casts = []
        for i, name in enumerate(node.output):
            raw, half = f"{name}__fp32", f"{name}__fp16"
            node.output[i] = raw
            casts += [
                helper.make_node("Cast", [raw], [half], to=TensorProto.FLOAT16),
                helper.make_node("Cast", [half], [name], to=TensorProto.FLOAT),
            ]
        nodes += [node, *casts]
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.save(model, str(out))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--images",
        type=int,
        default=40,
        help="evaluation images, and as many calibration drawings (default: 40, at least 24)",
    )
    p.add_argument("--work-dir", type=Path, help="keep the artifacts here (default: temporary)")
    args = p.parse_args(argv)
    from tests.evaluation.trained import BATCH_SIZE, BATCHES

    if args.images < BATCHES * BATCH_SIZE:
        p.error(
            f"--images {args.images}: at least {BATCHES * BATCH_SIZE}; the sample draws as "
            f"many calibration images, and the int8 export calibrates on {BATCHES} batches "
            f"of {BATCH_SIZE}"
        )
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with work_dir(args.work_dir, "bench-accuracy-") as work:
        return run(args, work)


def run(args: argparse.Namespace, work: Path) -> int:
    from bodypose_exporter.evaluation.ap_gate import check_ap_drop
    from bodypose_exporter.evaluation.sources import open_set
    from bodypose_exporter.stages.sample import write_trained_sample
    from bodypose_exporter.synthetic.train import TrainSpec

    # The export, build, damage and blank-calibration steps are the accuracy tests' own
    # (one owner): the figures printed here are those the tests judge.
    from tests.evaluation import trained

    spec = TrainSpec()
    t0 = time.perf_counter()
    sample = write_trained_sample(work / "sample", trained.KEY, images=args.images)
    how = "trained now" if sample.trained_now else "from the cache"
    print(
        f"trained sample: {sample.training['seconds']} s of training ({how}, "
        f"{spec.steps} steps of {spec.batch_size}), loss per image "
        f"{sample.training['lossPerImage'][0]} -> {sample.training['lossPerImage'][-1]}",
        flush=True,
    )
    exported = trained.export_int8(sample.model, sample.calibration_images, work / "export")
    blank = trained.export_int8(
        sample.model,
        trained.blank_images(work / "blank", trained.BATCHES * trained.BATCH_SIZE),
        work / "blank_export",
    )
    onnx = exported / "bpnet_model.onnx"
    engines = {
        "fp32": trained.build(exported, "fp32", work / "fp32"),
        "fp16 (onnxruntime: fp32 graph)": trained.build(exported, "fp16", work / "fp16"),
        "fp16 (emulated rounding)": fp16_emulated(onnx, work / "fp16_emulated.onnx"),
        "int8": trained.build(exported, "int8", work / "int8"),
        "int8, blank calibration": trained.build(blank, "int8", work / "int8_blank"),
        f"fp32, noise {DAMAGE_SIGMA} on outputs": trained.build(
            exported,
            "fp32",
            work / "damaged",
            trained.damaged(onnx, work / "damaged.onnx", DAMAGE_SIGMA),
        ),
    }
    precision = {name: name.split()[0].rstrip(",") for name in engines}
    print(f"artifacts in {time.perf_counter() - t0:.0f} s", flush=True)

    evaluation_set = open_set(str(sample.annotations), str(sample.images), work / "eval")
    reference = trained.evaluate(onnx, evaluation_set)
    names = ["AP", "AP50", "AP75", "APm", "APl"]
    width = max(len(n) for n in engines) + 2
    print(
        f"\nOKS keypoint AP (points) on {evaluation_set.image_count} drawn images, "
        f"{evaluation_set.people} people, {trained.HEIGHT}x{trained.WIDTH}:"
    )
    print(f"{'':{width}}" + "".join(f"{n:>7}" for n in names) + "   drop  limit  gate")
    print(f"{'FP32 ONNX (reference)':{width}}" + "".join(
        f"{v * 100:7.2f}" for v in reference.by_name().values()))  # fmt: skip
    failures = 0
    for name, artifact in engines.items():
        figures = trained.evaluate(artifact, evaluation_set)
        verdict = check_ap_drop(reference, figures, precision[name])
        cells = "".join(f"{v * 100:7.2f}" for v in figures.by_name().values())
        must_fail = "blank" in name or "noise" in name
        status = "passed" if verdict.passed else "REFUSED"
        print(f"{name:{width}}{cells} {verdict.drop:6.2f} {verdict.limit:6.1f}  {status}")
        failures += verdict.passed == must_fail
    print(
        "\ngoal: fp32, fp16 and int8 within their limits (0.5, 0.5, 3 AP points), the blank "
        "calibration and the damaged weights refused: "
        + ("met" if failures == 0 else f"NOT met ({failures} unexpected verdicts)")
    )
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
