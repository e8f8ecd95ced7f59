"""Engine builders: one interface, a TensorRT and an ONNX Runtime implementation.

- `base`: the interface (`EngineBackend`, `EngineRunner`, `BuildRequest`, `BuiltEngine`);
- `registry`: backends by name;
- `naming`: engine file names as TAO's notebook writes them;
- `ort/`: ONNX Runtime (CPU pools, and every test on machines without a GPU);
- `trt/`: TensorRT 10 (GPU pools; importable only where TensorRT is).
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
