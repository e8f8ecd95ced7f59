"""Build-stage requests from flat keywords, as the tests name them.

`stage_request(onnx=..., engine_file=..., precision=..., qdq_model=...)`
sorts each keyword into the type that owns it (`EngineOptions`, a
backend's own options in `EngineOptions.backend_options`, `BuildInputs`,
`BuildStageRequest`), so a test says what it builds, not where each
setting lives.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from bodypose_exporter.cli.args import backend_option_types
from bodypose_exporter.engines.base import BuildRequest, EngineOptions
from bodypose_exporter.stages.build_request import BuildInputs, BuildStageRequest


def _fields(kind: type) -> set[str]:
    return {f.name for f in dataclasses.fields(kind)}


def engine_options(**given: Any) -> EngineOptions:
    """`EngineOptions` from its own keywords and those of any backend's options
    (`int8_route=`, `compute_capabilities=`...)."""
    kinds = backend_option_types()
    common = {k: v for k, v in given.items() if k in _fields(EngineOptions)}
    backend_options = tuple(
        kind(**{k: v for k, v in given.items() if k in _fields(kind)}) for kind in kinds
    )
    return EngineOptions(**common, backend_options=backend_options)


def _owned(kind: type) -> set[str]:
    """`kind`'s fields; for `EngineOptions`, its backends' options' fields too."""
    if kind is EngineOptions:
        return set().union(*(_fields(k) for k in (kind, *backend_option_types())))
    return _fields(kind)


def _split(given: dict[str, Any], *kinds: type) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{} for _ in kinds]
    for name, value in given.items():
        owner = next((i for i, kind in enumerate(kinds) if name in _owned(kind)), None)
        if owner is None:
            raise TypeError(f"no build type has a field {name!r}")
        parts[owner][name] = value
    return parts


def stage_request(**given: Any) -> BuildStageRequest:
    options, inputs, stage = _split(given, EngineOptions, BuildInputs, BuildStageRequest)
    return BuildStageRequest(
        engine=engine_options(**options), inputs=BuildInputs(**inputs), **stage
    )


def build_request(onnx_path: Path, engine_path: Path, **given: Any) -> BuildRequest:
    options, files = _split(given, EngineOptions, BuildRequest)
    return BuildRequest(engine_options(**options), onnx_path, engine_path, **files)
