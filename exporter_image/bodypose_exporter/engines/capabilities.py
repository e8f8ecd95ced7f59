"""What some backends can do and others cannot: optional interfaces, asked with `isinstance`.

Every backend implements `base.EngineBackend` (describe, target, build, load);
a capability only some of them have is an interface of its own here, which a
backend implements or does not, and the stages ask `isinstance(backend,
TimingCache)` rather than reading a boolean in the facts or a method that
answers None. Followed: kubernetes-sigs/kueue `pkg/controller/jobframework`
(`interface.go`: one required `GenericJob`, and optional interfaces such as
`JobWithSkip` and `JobWithFinalize` that the reconciler type-asserts).

`runtime_checkable` checks only that the members exist, so each member has a
name no backend would carry for another reason: the test plug-in
(`tests/support/echo_backend/engine.py`) still has the `unable_to_run` and
`timing_cache_key` methods the required interface once had, and stays a
backend with none of these capabilities.
"""

from __future__ import annotations

import argparse
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from bodypose_exporter.engines.base import BuildRequest, EngineOptions


@runtime_checkable
class TimingCache(Protocol):
    """Its builds keep a timing cache: the one its hardware shares under
    --timing_cache_dir, else the one --timing_cache names, else one beside the engine."""

    def shared_timing_cache_key(self, described: dict[str, Any]) -> str:
        """The name of the timing cache every build for this hardware shares (a
        file-name-safe key of what the cache is specific to)."""
        ...


@runtime_checkable
class BuiltAheadOfTime(Protocol):
    """It builds for hardware this pod may not have: the engine may be built and not run."""

    def not_run_reason(self, described: dict[str, Any]) -> str | None:
        """Why this process cannot run what it built (then it is built and not run), or
        None when it can."""
        ...


@runtime_checkable
class ChecksGpu(Protocol):
    """It builds on a GPU and refuses to start on another than the pool's (its own options
    say which: tensorrt's --expected_gpu_product / --expected_compute_capability)."""

    def check_gpu(self, described: dict[str, Any], options: EngineOptions) -> None:
        """Raise before any work when the GPU `described` is not the one expected."""
        ...


@runtime_checkable
class Int8InstructionSets(Protocol):
    """Facts of a backend whose int8 artifacts are built for a CPU class
    (--int8_instruction_set): their speed is the class's int8 kernels', timed against the
    FP32 model. On the facts: the parser's choices are read before any runtime import."""

    @property
    def int8_instruction_sets(self) -> tuple[str, ...]:
        """The classes it builds for, the baseline first."""
        ...


@runtime_checkable
class FallsBackOnFailedGates(Protocol):
    """Its first build may trade some accuracy for speed: where that engine fails its
    gates, the build step builds once more from the request this names, before it fails
    (onnxruntime: int7 weights, fast on every x86 CPU, then uint8, exact and slower)."""

    def fallback_request(self, request: BuildRequest) -> tuple[BuildRequest, str] | None:
        """The request to build instead of `request`'s engine that failed its gates, and
        why, in words for the log and the manifest's warnings; None: no other."""
        ...


@runtime_checkable
class OwnsArguments(Protocol):
    """Facts of a backend that takes flags and options of its own: it adds them, the CLI
    and `EngineOptions` name none of them (`cli.args.add_backend_arguments`). On the
    facts, not the backend, because the parser is made before any backend's runtime is
    imported."""

    def add_arguments(self, parser: argparse.ArgumentParser, *, export: bool) -> None:
        """Add its flags; `export`: `None` defaults (bpnet-export refuses them without
        --engine_file)."""
        ...

    @property
    def options_type(self) -> type:
        """Its options: a frozen dataclass whose fields name their flags (`base.flag`); the
        CLI makes one from the flags into `EngineOptions.backend_options`, and the backend
        reads it with `EngineOptions.own`."""
        ...


@runtime_checkable
class ShowsExamples(Protocol):
    """Facts of a backend whose command lines `bpnet build --help` shows among its
    examples (`ArgumentsIn`: its `args.py`'s `EXAMPLES`), so that the help teaches each
    backend's flags in a real command line and the CLI names no backend."""

    @property
    def help_examples(self) -> str:
        """Lines of the epilog: each a command, then what it does, indented."""
        ...


class ArgumentsIn:
    """`OwnsArguments` for facts whose flags and options are one module's (the backend's
    `args.py`: `add_arguments(parser, *, export)` and `OPTIONS`, its options dataclass):
    a backend's facts class names the module, `arguments = args`."""

    #: A class attribute of the facts class (not a dataclass field: the subclass is not
    #: decorated again).
    arguments: ModuleType

    def add_arguments(self, parser: argparse.ArgumentParser, *, export: bool) -> None:
        self.arguments.add_arguments(parser, export=export)

    @property
    def options_type(self) -> type:
        options: type = self.arguments.OPTIONS
        return options

    @property
    def help_examples(self) -> str:
        examples: str = getattr(self.arguments, "EXAMPLES", "")
        return examples
