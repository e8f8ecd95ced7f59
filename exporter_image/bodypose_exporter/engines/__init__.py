"""Engine builders: one interface, one folder per backend, and the registry that names them.

- `base`: the interface (`EngineBackend`, `EngineRunner`, `BuildRequest`, `BuiltEngine`);
- `capabilities`: the optional interfaces only some backends implement;
- `registry`: backends by name, and what each backend's folder is;
- `naming`: engine file names as TAO's notebook writes them.

Every backend package has the same files for the same roles, as Polygraphy
lays out `backend/<name>/` (NVIDIA/TensorRT `tools/Polygraphy/polygraphy/
backend/trt/` and `backend/onnxrt/`: `loader.py`, `runner.py`):

- `facts.py`: what it is (`BackendFacts`), importable without its runtime;
- `args.py`: its own flags, where it takes any (`capabilities.OwnsArguments`);
- `backend.py`: `BACKEND`, what `engines.registry` hands out by name;
- `builder.py`: the build (a `BuildRequest` in, a `BuiltEngine` out);
- `runner.py`: a built artifact loaded and run (`EngineRunner`);
- `hardware.py`: what the artifact was built for (`describe()`).
"""

from bodypose_exporter.engines.base import (
    PRECISIONS,
    BuildRequest,
    BuiltEngine,
    EngineBackend,
    EngineRunner,
    run_batched,
)
from bodypose_exporter.engines.registry import BACKENDS, backend_by_name, require_available

__all__ = [
    "BACKENDS",
    "PRECISIONS",
    "BuildRequest",
    "BuiltEngine",
    "EngineBackend",
    "EngineRunner",
    "backend_by_name",
    "require_available",
    "run_batched",
]
