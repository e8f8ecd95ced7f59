"""Argument groups, each defined once and shared by the commands that take it.

Followed: Polygraphy's argument groups (NVIDIA/TensorRT
`tools/Polygraphy/polygraphy/tools/args/`, README there: a group owns a set
of options and how they are parsed, and every tool that needs them subscribes
to the group instead of declaring its own). Here a group is a function that
adds its options to a parser; where two commands take the same flag with
different defaults, the group takes the difference as an argument, so the
flag's name, type, choices and help exist once.

The flag names and defaults are TAO's (`tao model bpnet export`, see
`cli/export.py`); `bpnet-export` and `bpnet-build` keep exactly the flags they
had before these groups existed (tests/cli/flags_today.json).

`None` defaults mark "not given" where a command refuses flags that would do
nothing (calibration flags without int8, engine flags without --engine_file).
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from bodypose_exporter.cli.paths import PathKind, mark
from bodypose_exporter.codec.registry import CODEC_CHOICES
from bodypose_exporter.engines.base import EngineOptions
from bodypose_exporter.engines.capabilities import Int8InstructionSets, OwnsArguments
from bodypose_exporter.engines.registry import BACKEND_MODULES, BACKENDS, DEFAULT_BACKEND
from bodypose_exporter.errors import UserError
from bodypose_exporter.evaluation.ap_gate import max_ap_drop_for
from bodypose_exporter.verification.agreement_gates import GATE_FLAGS

PRECISIONS = ["fp32", "fp16", "int8"]
DEFAULT_MAX_BATCH_SIZE = 1
DEFAULT_MAX_WORKSPACE_SIZE = 2 * (1 << 30)
DEFAULT_BATCHES = 10
DEFAULT_BATCH_SIZE = 1
DEFAULT_CACHE_FILE = "./cal.bin"
CAL_METHODS = ["entropy", "minmax", "percentile"]


def add_key(p: argparse.ArgumentParser, *, required: bool = False, help: str | None = None) -> None:
    """-k/--key: the model key (TAO's flag)."""
    p.add_argument(
        "-k",
        "--key",
        required=required,
        default=None,
        help=help
        or "the key the model was encrypted with (default: $BODYPOSE_MODEL_KEY, so that a "
        "Job passes it from a Secret without putting it in its args)",
    )


def add_input_dims(
    p: argparse.ArgumentParser, *, default: str | None = "256,256,3", tao_short: bool = False
) -> None:
    """-d/--input_dims and --data_format (`-i/--data_format` where `tao_short`: TAO's bpnet
    export names it so): the network input, channels_last."""
    p.add_argument(
        "-d",
        "--input_dims",
        default=default,
        required=default is None,
        help="height,width,channels of the network input, channels_last"
        + (f" (default: {default})" if default else "")
        + "; height and width multiples of 8, preferably of 16, 32 or 64",
    )
    p.add_argument(
        *(["-i"] if tao_short else []),
        "--data_format",
        default="channels_last",
        choices=["channels_last", "channels_first"],
        help="input layout; BodyPoseNet is trained channels_last (NHWC)",
    )


def add_data_type(p: argparse.ArgumentParser, *, export: bool) -> None:
    p.add_argument(
        "--data_type",
        default="fp32",
        choices=PRECISIONS,
        help="precision of the TensorRT engine (default: fp32); the .etlt is the same for all"
        if export
        else "precision of the engine (default: fp32)",
    )


def add_calibration(p: argparse.ArgumentParser, *, export: bool, images: bool = True) -> None:
    """The INT8 calibration flags. `export`: `None` defaults, refused without int8."""
    if images:
        cal_image_dir = p.add_argument(
            "--cal_image_dir", default=None,
            help="int8: calibration images (.jpg, .jpeg, .png), a directory or an s3:// prefix; "
            "at least --batches x --batch_size of them, preprocessed as TAO's strict mode",
        )  # fmt: skip
        mark(cal_image_dir, PathKind.READ_DIR)
    cal_data_file = p.add_argument(
        "--cal_data_file", default=None,
        help="int8: calibration tensorfile (path or s3://): used if it exists, else written "
        "from --cal_image_dir"
        if images
        else "calibration tensorfile (int8, tensorrt): TensorRT calibrates from it when "
        "--cal_cache_file does not exist yet, and writes that cache",
    )  # fmt: skip
    # The export writes a tensorfile made from the images; a build only reads one.
    mark(cal_data_file, PathKind.CACHE_FILE if images else PathKind.READ_FILE,
         example="calibration.tensorfile")  # fmt: skip
    cal_cache_file = p.add_argument(
        "--cal_cache_file", default=None,
        help="int8: calibration cache (path or s3://; default ./cal.bin): reused if it exists "
        "(calibration skipped), else written"
        if images
        else "cal.bin (int8): replayed if it exists",
    )  # fmt: skip
    mark(cal_cache_file, PathKind.CACHE_FILE, example="cal.bin")
    if images:
        p.add_argument(
            "--cal_method", default="entropy", choices=CAL_METHODS,
            help="int8: how each tensor's range is chosen (default: entropy, TensorRT's KL "
            "search)",
        )  # fmt: skip
    if export:
        p.add_argument(
            "--batches", type=int, default=None,
            help=f"int8: calibration batches (default: {DEFAULT_BATCHES})",
        )  # fmt: skip
        p.add_argument(
            "--batch_size", type=int, default=None,
            help=f"int8: images per batch (default: {DEFAULT_BATCH_SIZE})",
        )  # fmt: skip
    else:
        p.add_argument(
            "--batches", type=int, default=DEFAULT_BATCHES,
            help="tensorfile batches to calibrate on" if not images else "calibration batches",
        )  # fmt: skip
        p.add_argument(
            "--batch_size", type=int, default=DEFAULT_BATCH_SIZE,
            help="images per calibration batch",
        )  # fmt: skip


def add_force_ptq(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--force_ptq", action="store_true", default=None, help="force post-training quantization"
    )


def add_engine(p: argparse.ArgumentParser, *, export: bool) -> None:
    """The engine's build options. `export`: `None` defaults, refused without --engine_file."""
    p.add_argument(
        "--max_batch_size", type=int, default=None if export else DEFAULT_MAX_BATCH_SIZE,
        help=f"engine max batch (default: {DEFAULT_MAX_BATCH_SIZE})",
    )  # fmt: skip
    p.add_argument(
        "--max_workspace_size", type=int,
        default=None if export else DEFAULT_MAX_WORKSPACE_SIZE,
        help="engine workspace bytes (default: 2 GiB)",
    )  # fmt: skip
    p.add_argument(
        "-s", "--strict_type_constraints", action="store_true",
        default=None if export else False,
        help="make TensorRT obey the requested precision",
    )  # fmt: skip


def add_backend(p: argparse.ArgumentParser, *, export: bool) -> None:
    p.add_argument(
        "--engine_backend", default=None if export else DEFAULT_BACKEND, choices=BACKENDS,
        help=f"what the engine is built with: {', '.join(BACKENDS)} (default: "
        f"{DEFAULT_BACKEND}); a flag only one backend takes says so in its help",
    )  # fmt: skip
    timing_cache = p.add_argument(
        "--timing_cache", default=None,
        help="TensorRT timing cache to reuse and update (default: the one --timing_cache_dir "
        "holds for this GPU, else <engine_file>.timing.cache)",
    )  # fmt: skip
    mark(timing_cache, PathKind.CACHE_FILE, example="timing.cache")
    timing_cache_dir = p.add_argument(
        "--timing_cache_dir", default=None,
        help="directory or s3:// prefix of TensorRT timing caches shared by GPU model and "
        "TensorRT version: <dir>/<GPU>-sm<cc>-trt<version>.cache is read before the build "
        "and written back, merged, after it",
    )  # fmt: skip
    mark(timing_cache_dir, PathKind.WRITE_DIR)


def add_reference_images(p: argparse.ArgumentParser) -> None:
    reference_images = p.add_argument(
        "--reference_images", default=None,
        help="verify the engine on these images (a local directory) instead of the inputs "
        "in reference.npz",
    )  # fmt: skip
    mark(reference_images, PathKind.READ_DIR)


def add_gates(p: argparse.ArgumentParser) -> None:
    """The verification gate overrides (`verification.agreement_gates`), bpnet-export's and
    bpnet-build's."""
    p.add_argument(
        GATE_FLAGS["maxAbsDiff"], type=float, default=None,
        help="gate: largest |engine - FP32 reference| (default per precision: fp32 0.005, "
        "fp16 0.05, int8 none)",
    )  # fmt: skip
    p.add_argument(
        GATE_FLAGS["cosine"], type=float, default=None,
        help="gate: least cosine similarity of heatmaps and PAFs (fp32 0.9999, fp16 0.999, "
        "int8 0.98)",
    )  # fmt: skip
    p.add_argument(
        GATE_FLAGS["peakAgreement"], type=float, default=None,
        help="gate: least share of the reference's keypoint candidates the engine has within "
        "one heatmap cell (fp32 0.99, fp16 0.95, int8 0.85)",
    )  # fmt: skip


def _attribute(flag: str) -> str:
    """The argparse attribute of a flag as field metadata names it (`-s/--strict_type_constraints`
    -> `strict_type_constraints`)."""
    return flag.rpartition("/")[2].lstrip("-")


def _given(kind: type, args: argparse.Namespace) -> dict[str, Any]:
    """`kind`'s fields set by their flags (`engines.base.flag`); a flag left out (None:
    bpnet-export's "not given") keeps the field's default."""
    given: dict[str, Any] = {}
    for f in dataclasses.fields(kind):
        if "flag" in f.metadata:
            value = getattr(args, _attribute(f.metadata["flag"]), None)
            if value is not None:
                given[f.name] = value
    return given


def backend_option_types() -> tuple[type, ...]:
    """Each registered backend's own options (`capabilities.OwnsArguments.options_type`)."""
    return tuple(
        facts.options_type
        for facts, _ in BACKEND_MODULES.values()
        if isinstance(facts, OwnsArguments)
    )


def engine_options(args: argparse.Namespace) -> EngineOptions:
    """The one `EngineOptions` of a run, with every registered backend's own options, from
    the flags their fields name."""
    own = tuple(kind(**_given(kind, args)) for kind in backend_option_types())
    return EngineOptions(**_given(EngineOptions, args), backend_options=own)


def engine_only_flags(*types: type) -> dict[str, str]:
    """flag -> argparse attribute of every field of `types` that `bpnet-export` takes only
    with --engine_file (their metadata says so), then the gate flags."""
    flags = {
        f.metadata["flag"]: _attribute(f.metadata["flag"])
        for kind in types
        for f in dataclasses.fields(kind)
        if f.metadata.get("engine_only")
    }
    flags.update({flag: _attribute(flag) for flag in GATE_FLAGS.values()})
    return flags


def gate_overrides(args: argparse.Namespace) -> tuple[tuple[str, float | None], ...]:
    return (
        ("maxAbsDiff", args.max_abs_diff),
        ("cosine", args.min_cosine),
        ("peakAgreement", args.min_peak_agreement),
    )


def add_codec(p: argparse.ArgumentParser, *, help: str | None = None) -> None:
    p.add_argument(
        "--codec",
        default="auto",
        choices=CODEC_CHOICES,
        help=help
        or "model-file cipher: NVIDIA's (inside TAO containers, byte-compatible with TAO and "
        "DeepStream), our open one, or auto (NVIDIA's when present)",
    )


def add_verbose(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")


#: The hardware-compatibility levels some backend has (its contract row's), "none" first.
HARDWARE_COMPATIBILITY = list(
    dict.fromkeys(
        level
        for facts, _ in BACKEND_MODULES.values()
        for level in facts.hardware_compatibility_levels
    )
)
#: The CPU int8 classes some backend builds for (`engines.capabilities.Int8InstructionSets`).
INT8_INSTRUCTION_SETS = list(
    dict.fromkeys(
        c
        for facts, _ in BACKEND_MODULES.values()
        if isinstance(facts, Int8InstructionSets)
        for c in facts.int8_instruction_sets
    )
)


def add_backend_arguments(p: argparse.ArgumentParser, *, export: bool) -> None:
    """The target's flags: the hardware-compatibility level (a contract row's, any backend may
    have levels), then each registered backend's own group (`capabilities.OwnsArguments`,
    in `engines/<backend>/args.py`): this module names no backend. `export`: `None` defaults,
    refused without --engine_file."""
    p.add_argument(
        "--hardware_compatibility", default=None if export else "none",
        choices=HARDWARE_COMPATIBILITY,
        help="the engine's hardware-compatibility level, for the backends that have levels: "
        "none (default: the engine runs on this GPU's compute capability only) or ampere+ "
        "(runs on every GPU from compute capability 8.0 on, somewhat slower); part of the "
        "engine's file name and manifest",
    )  # fmt: skip
    for facts, _ in BACKEND_MODULES.values():
        if isinstance(facts, OwnsArguments):
            facts.add_arguments(p, export=export)


def add_serving(p: argparse.ArgumentParser) -> None:
    """Serving configs written besides the ones next to the engine (`stages.serving_configs`)."""
    triton_repository = p.add_argument(
        "--triton_repository", default=None,
        help="also write the engine into this Triton model repository (directory or s3:// "
        "prefix): <dir>/bpnet/config.pbtxt and 1/model.plan (model.onnx for onnxruntime); "
        "TensorRT plans of other GPUs already there are kept and mapped by compute capability "
        "(cc_model_filenames). A copy is always written beside the engine under triton/",
    )  # fmt: skip
    mark(triton_repository, PathKind.WRITE_DIR)
    deepstream_config = p.add_argument(
        "--deepstream_config", default=None,
        help="also write DeepStream's nvinfer config (bodypose2d_pgie_config.txt) at this "
        "path, its onnx-file, model-engine-file and int8-calib-file relative to it; one is "
        "always written beside the engine",
    )  # fmt: skip
    mark(deepstream_config, PathKind.WRITE_FILE, example="bodypose2d_pgie_config.txt")


def add_evaluation(p: argparse.ArgumentParser, *, build: bool) -> None:
    """The OKS AP evaluation (`evaluation`, a resource's `spec.evaluation`), `None` = not given.

    The export evaluates its FP32 model once and writes evaluation.json; a
    build evaluates its engine on the same set and gates the drop against it.
    """
    where = "default: the set --eval_reference was measured on; " if build else ""
    eval_annotations = p.add_argument(
        "--eval_annotations", default=None, metavar="URI_OR_PATH",
        help=f"COCO person-keypoints JSON to evaluate OKS AP on ({where}a path or s3:// "
        "URI); with --eval_images",
    )  # fmt: skip
    mark(eval_annotations, PathKind.READ_FILE)
    eval_images = p.add_argument(
        "--eval_images", default=None, metavar="URI_OR_PATH",
        help="the directory (or s3:// prefix) holding each evaluation image's file_name",
    )  # fmt: skip
    mark(eval_images, PathKind.READ_DIR)
    p.add_argument(
        "--eval_max_images", type=int, default=None, metavar="N",
        help="evaluate only the first N images by id (default: all); more than the set holds "
        "uses them all and says so",
    )  # fmt: skip
    if not build:
        return
    eval_reference = p.add_argument(
        "--eval_reference", default=None, metavar="URI_OR_PATH",
        help="the export's evaluation.json (path or s3://): the FP32 model's AP the engine's "
        "is compared with; turns the AP gate on",
    )  # fmt: skip
    mark(eval_reference, PathKind.READ_FILE, label="evaluation reference")
    p.add_argument(
        "--max_ap_drop", type=float, default=None, metavar="POINTS",
        help="fail (exit 3, AccuracyDropTooLarge) when the engine's AP is more than this many "
        "AP points (AP x 100) below the FP32 model's (default: fp32 0.5, fp16 0.5, int8 3)",
    )  # fmt: skip


def evaluation_flags(args: argparse.Namespace, *, build: bool) -> dict[str, object]:
    """The evaluation flags given, by flag name (refusals of what would do nothing)."""
    names = ["--eval_annotations", "--eval_images", "--eval_max_images"]
    if build:
        names += ["--eval_reference", "--max_ap_drop"]
    return {n: getattr(args, n[2:]) for n in names if getattr(args, n[2:]) is not None}


def check_evaluation(args: argparse.Namespace, *, build: bool) -> None:
    """Refuse evaluation flags that would do nothing or cannot go together, before any work."""
    given = evaluation_flags(args, build=build)
    if build and given and args.eval_reference is None:
        raise UserError(
            f"{', '.join(given)}: the AP gate needs --eval_reference (the export's "
            "evaluation.json, the FP32 model's AP to compare the engine's with)"
        )
    annotations, images = args.eval_annotations, args.eval_images
    if images is not None and annotations is None:
        raise UserError(
            "--eval_images needs --eval_annotations (the COCO person-keypoints JSON that names "
            "those images)"
        )
    if annotations is not None and images is None:
        raise UserError(
            "--eval_annotations needs --eval_images (the directory or s3:// prefix holding the "
            "images it names)"
        )
    if not build and args.eval_max_images is not None and annotations is None:
        raise UserError("--eval_max_images: only used with --eval_annotations and --eval_images")
    if args.eval_max_images is not None and args.eval_max_images < 1:
        raise UserError(f"--eval_max_images must be at least 1, got {args.eval_max_images}")
    if build and args.max_ap_drop is not None:
        # The library's own check and sentence (a resource's maxApDrop says the same).
        max_ap_drop_for(args.data_type, args.max_ap_drop)
