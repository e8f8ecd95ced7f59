"""The engine interface, in the spirit of Polygraphy's runners: build once, run many.

A backend turns the exported FP32 ONNX model (plus, for int8, the calibration
cache or the QDQ model) into a runnable artifact for the hardware it runs on,
and loads that artifact into a runner. The rest of the exporter holds a
backend chosen by name (`registry.backend_by_name`) and never knows which one
it is: what differs between backends is declared by each (`BackendFacts`,
`EngineBackend.target`) and asked, never inferred from the name. Followed:
NVIDIA/TensorRT `tools/Polygraphy/polygraphy/backend/*` (loaders that build,
runners that infer, one shape for every backend) and kubernetes-sigs/kueue
`pkg/controller/jobframework` (one interface every integration implements,
the differences as facts and optional capabilities it declares).
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from bodypose_contract.backends import BUILT_IN, PRECISIONS, BackendSupport
from bodypose_contract.manifest import Int8Source
from bodypose_exporter.serving.triton import TritonPlatform

__all__ = ["PRECISIONS", "BackendSupport"]  # re-exported: the contract's, for the stages


OptionsT = TypeVar("OptionsT")


def flag(name: str, *, engine_only: bool = True) -> dict[str, Any]:
    """Field metadata: the command-line flag that sets the field (`cli` reads it), and
    whether `bpnet-export` takes it only with `--engine_file`."""
    return {"flag": name, "engine_only": engine_only}


@dataclass(frozen=True)
class EngineOptions:
    """How to build one engine: made once (the CLI's flags, the build Job's arguments) and
    passed down unchanged to the backend, which gets it inside a `BuildRequest`.

    int8 sources, in order of preference: the calibration cache (cal.bin) when
    it exists; else the tensorfile when given: the backend calibrates and
    writes the cache (TAO's `--cal_cache_file` semantics: used if present,
    written if not); else the explicitly quantized (QDQ) model. A backend
    states which it takes (`BackendFacts.int8_sources`); TensorRT chooses
    between the QDQ model and the cache by its own `--int8_route` (`trt/args.py`).
    """

    #: The contract's default (the first of its built-in rows), `registry.DEFAULT_BACKEND`.
    backend: str = field(default=BUILT_IN[0].name, metadata=flag("--engine_backend"))
    precision: str = field(default="fp32", metadata=flag("--data_type", engine_only=False))
    max_batch_size: int = field(default=1, metadata=flag("--max_batch_size"))
    max_workspace_size: int = field(default=2 << 30, metadata=flag("--max_workspace_size"))
    strict_types: bool = field(default=False, metadata=flag("-s/--strict_type_constraints"))
    calibration_batches: int = field(default=10, metadata=flag("--batches", engine_only=False))
    calibration_batch_size: int = field(default=1, metadata=flag("--batch_size", engine_only=False))
    #: The engine's hardware-compatibility level, for the backends whose contract row has
    #: levels (`compatibility.check_level`).
    hardware_compatibility: str = field(default="none", metadata=flag("--hardware_compatibility"))
    #: Each registered backend's own options (`capabilities.OwnsArguments.options_type`: its
    #: int8 route, the GPU it must build on, the CPU class, the compute capabilities...),
    #: one per backend that has flags of its own; the backend reads its own with `own`.
    #: Those of other backends are here too, so that a flag given to the wrong backend is
    #: refused rather than ignored (`compatibility.check_foreign_options`).
    backend_options: tuple[Any, ...] = ()

    def own(self, kind: type[OptionsT]) -> OptionsT:
        """This run's options of type `kind` (one backend's), its defaults when none came."""
        found = next((o for o in self.backend_options if type(o) is kind), None)
        return found if found is not None else kind()

    def with_own(self, options: Any) -> EngineOptions:
        """These options with `options` in place of its type's (added where none came)."""
        kept = tuple(o for o in self.backend_options if type(o) is not type(options))
        return dataclasses.replace(self, backend_options=(*kept, options))


@dataclass(frozen=True)
class BuildRequest:
    """What a backend builds: the options and the local files (the stage fetched any s3://
    inputs and fills these in; the deploy engine is the same request with its own files)."""

    options: EngineOptions
    onnx_path: Path
    engine_path: Path
    calibration_cache: Path | None = None
    calibration_data: Path | None = None
    qdq_model: Path | None = None
    #: The FP16 mixed-precision model (`convert.fp16`): what strongly typed fp16 builds take.
    fp16_model: Path | None = None
    timing_cache: Path | None = None


@dataclass(frozen=True)
class BackendFacts:
    """Everything a backend is besides building and loading, declared by the backend
    itself (`engines/<backend>/facts.py`) and importable without its runtime: the
    stages, serving and naming ask these, never the backend's name.

    What it supports (precisions, artifact suffixes, int8 sources, compatibility
    levels, precisions built as another) is its row of the contract both images
    install (`support`, `bodypose_contract.backends`), the same row the operator
    and the CRD read; the rest is the exporter's alone. What only some backends
    can do (a timing cache, a GPU check, int8 by CPU class, flags of their own)
    is not here: it is an optional interface (`engines.capabilities`)."""

    support: BackendSupport
    runtime: str  # what loads the artifact, as the manifest says it
    triton: TritonPlatform | None  # None: Triton has no platform for the artifact
    #: DeepStream's nvinfer loads the artifact itself (`model-engine-file`); else only the ONNX.
    nvinfer_loads: bool
    needs_gpu: bool  # its build and its runner need a GPU in the pod
    #: The import the backend needs, and what to tell a user where it is missing.
    requires: str | None = None
    unavailable: str = ""

    @property
    def name(self) -> str:
        return self.support.name

    @property
    def precisions(self) -> tuple[str, ...]:
        return self.support.precisions

    @property
    def artifact_suffixes(self) -> tuple[str, ...]:
        """The suffixes its artifact's file takes, the default first
        (`naming.artifact_file_name`)."""
        return self.support.artifact_suffixes

    @property
    def int8_sources(self) -> tuple[str, ...]:
        return self.support.int8_sources

    @property
    def hardware_compatibility_levels(self) -> tuple[str, ...]:
        return self.support.hardware_compatibility_levels

    def built_precision(self, asked: str) -> tuple[str, str | None]:
        """The precision an artifact asked for as `asked` computes in, and why it differs
        (None when it does not). The artifact is named, recorded and verified as what it
        is."""
        return self.support.built_precision(asked)


@dataclass(frozen=True)
class CompatibilityRecord:
    """What an artifact needs of the machine that loads it, in its manifest (`fields`) and,
    where `tag` is not empty, in its file name (`bpnet_model...int8.<tag>.engine`)."""

    fields: dict[str, str]
    tag: str = ""

    def as_dict(self) -> dict[str, str]:
        return dict(self.fields)


class Graph(enum.Enum):
    """What an engine was built from (`BuiltEngine.graph`, which the backend fills): the
    stages serve and publish by it, never by a backend's own words in its details."""

    ONNX = "onnx"  # the FP32 graph as it is (fp32, and fp16 from the FP16 flag)
    QDQ = "qdq"  # the QDQ model's graph, or its ranges
    FP16_MODEL = "fp16-model"  # the FP16 mixed-precision model (strongly typed fp16)
    CALIBRATION_CACHE = "calibration-cache"  # the FP32 graph with cal.bin's ranges
    TENSORFILE = "tensorfile"  # the FP32 graph, calibrated in the build on the tensorfile

    @classmethod
    def of_int8_source(cls, source: str | None) -> Graph:
        """The graph of an engine whose int8 ranges came from `source` (an `Int8Source`,
        what the manifest's `build.int8Source` says); the ONNX as it is for any other."""
        return _INT8_GRAPHS.get(str(source), cls.ONNX)


_INT8_GRAPHS = {
    Int8Source.QDQ.value: Graph.QDQ,
    Int8Source.CALIBRATION_CACHE.value: Graph.CALIBRATION_CACHE,
    Int8Source.TENSORFILE.value: Graph.TENSORFILE,
}


@dataclass(frozen=True)
class BuiltEngine:
    """A built artifact, the hardware it was built for, and how it was built."""

    path: Path
    backend: str
    hardware: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    #: Files the backend wrote beside the artifact, to publish with it: (kind, path).
    companions: tuple[tuple[str, Path], ...] = ()
    #: What it was built from (the FP32 ONNX as it is unless the backend says otherwise).
    graph: Graph = Graph.ONNX


class EngineRunner(Protocol):
    """A loaded artifact: NHWC float32 batches in, outputs by tensor name out."""

    input_name: str
    output_names: list[str]
    max_batch_size: int

    def run(self, inputs: npt.NDArray[np.float32]) -> dict[str, npt.NDArray[np.float32]]: ...

    def close(self) -> None: ...


class EngineBackend(Protocol):
    """A backend: its facts, the hardware it builds for, its target, build and runner.

    `target` runs before anything is downloaded or built: it refuses options
    the backend cannot honour here (a GPU other than the pool's, a
    hardware-compatibility level it has no such thing as) and returns the
    artifact's compatibility record, or None when the artifact needs nothing
    particular of the machine that loads it. What only some backends do is an
    optional interface a backend implements besides this one
    (`engines.capabilities`).
    """

    facts: BackendFacts

    def describe(self) -> dict[str, Any]:
        """The hardware this process would build for (checked before a build starts)."""
        ...

    def target(
        self, options: EngineOptions, described: dict[str, Any]
    ) -> CompatibilityRecord | None: ...

    def build(self, request: BuildRequest) -> BuiltEngine: ...

    def load(self, engine_path: Path) -> EngineRunner: ...


def run_batched(
    runner: EngineRunner, inputs: npt.NDArray[np.float32]
) -> dict[str, npt.NDArray[np.float32]]:
    """Run `inputs` (any count) through `runner` in chunks of its max batch size."""
    step = max(1, runner.max_batch_size)
    parts: dict[str, list[npt.NDArray[np.float32]]] = {}
    for start in range(0, len(inputs), step):
        for name, value in runner.run(inputs[start : start + step]).items():
            parts.setdefault(name, []).append(value)
    return {name: np.concatenate(values) for name, values in parts.items()}
