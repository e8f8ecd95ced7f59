"""Engine builders: one interface, and a TensorRT, a TensorRT-RTX and an ONNX Runtime backend.

- `base`: the interface (`EngineBackend`, `EngineRunner`, `BuildRequest`, `BuiltEngine`);
- `registry`: backends by name;
- `naming`: engine file names as TAO's notebook writes them;
- `ort/`: ONNX Runtime (CPU pools, and every test on machines without a GPU);
- `trt/`: TensorRT 10 (GPU pools; importable only where TensorRT is);
- `trt_rtx/`: TensorRT-RTX (engines built ahead of time for named compute
  capabilities, with no GPU; run only where the pod opens a matching CUDA device).

Every backend package has the same files for the same roles, as Polygraphy
lays out `backend/<name>/` (NVIDIA/TensorRT `tools/Polygraphy/polygraphy/
backend/trt/` and `backend/onnxrt/`: `loader.py`, `runner.py`):

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
