"""Engine file names, as TAO's BodyPoseNet notebook names them.

NVIDIA/tao_tutorials `notebooks/tao_launcher_starter_kit/bpnet/bpnet.ipynb`
(sections 9.3 and 10.4): `bpnet_model.$IN_HEIGHT.$IN_WIDTH.int8.engine` for the
plain model, `bpnet_model.$IN_HEIGHT.$IN_WIDTH.int8.deploy.engine` for the
`--sdk_compatible_model` one (whose ONNX is `bpnet_model.deploy.onnx` and whose
cache is `calibration.$IN_HEIGHT.$IN_WIDTH.deploy.bin`). The operator's build
Jobs use the same names.
"""

from __future__ import annotations

from pathlib import Path

from bodypose_exporter.engines.base import PRECISIONS, BackendFacts, CompatibilityRecord

STEM = "bpnet_model"


def engine_file_name(height: int, width: int, precision: str, sdk_compatible: bool) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}")
    kind = "deploy.engine" if sdk_compatible else "engine"
    return f"{STEM}.{height}.{width}.{precision}.{kind}"


def resolve_engine_file(
    given: str, height: int, width: int, precision: str, sdk_compatible: bool
) -> str:
    """`--engine_file` as given, or the conventional name inside it when it names a directory.

    A value ending in `/` (a path or an s3:// prefix) or an existing local
    directory gets `engine_file_name(...)` appended.
    """
    name = engine_file_name(height, width, precision, sdk_compatible)
    if given.endswith("/"):
        return given + name
    if "://" not in given and Path(given).expanduser().is_dir():
        return str(Path(given).expanduser() / name)
    return given


#: Every suffix an engine file may be given with.
_ENGINE_SUFFIXES = (".engine", ".plan", ".onnx")


def timing_cache_beside(engine_file: str) -> str:
    """The timing cache kept beside an engine: `<engine file>.timing.cache`."""
    return f"{engine_file}.timing.cache"


def shared_timing_cache(directory: str, key: str) -> str:
    """The timing cache one kind of hardware shares: `<directory>/<key>.cache` (a path or
    an s3:// prefix; `key` from `capabilities.TimingCache.shared_timing_cache_key`)."""
    return f"{directory.rstrip('/')}/{key}.cache"


def artifact_file_name(
    given: str,
    facts: BackendFacts,
    record: CompatibilityRecord | None,
    precision: str | None = None,
) -> str:
    """`--engine_file` renamed for what the artifact is.

    - its suffix is one the backend's artifact takes (`BackendFacts.artifact_suffixes`):
      an onnxruntime artifact is an ONNX model, so `x.engine` -> `x.onnx` (a
      `.engine` file a user would try to load as a TensorRT plan);
    - the precision asked for (`precision`), where the name carries it as one of its
      dot-separated parts, becomes the one the artifact computes in when the backend
      builds it as another (`BackendFacts.built_precision`: ONNX Runtime,
      `x.224.320.fp16.engine` -> `x.224.320.fp32.onnx`);
    - the compatibility record's tag goes before it when the record has one
      (TensorRT: `x.int8.engine` -> `x.int8.sm86.trt10.8.0.43.engine`), so a
      file moved to another GPU or TensorRT says why it will not load.

    `given` may be a path or an s3:// URI; only its last part changes.
    """
    head, sep, name = given.rpartition("/")
    suffix = next((s for s in _ENGINE_SUFFIXES if name.endswith(s)), "")
    stem = name[: len(name) - len(suffix)]
    if precision is not None:
        built, _ = facts.built_precision(precision)
        parts = stem.split(".")
        if built != precision and precision in parts:
            at = len(parts) - 1 - parts[::-1].index(precision)  # the last one: TAO's place
            parts[at] = built
            stem = ".".join(parts)
    if suffix not in facts.artifact_suffixes:
        suffix = facts.artifact_suffixes[0]
    tag = record.tag if record is not None else ""
    if tag and not stem.endswith("." + tag):
        stem = f"{stem}.{tag}"
    return f"{head}{sep}{stem}{suffix}"
