"""Importing TensorRT and NVIDIA's CUDA runtime bindings, and checking CUDA results.

Device memory goes through NVIDIA's cuda-python (`cuda.bindings.runtime`, the
module path since cuda-python 12.6; `cuda.cudart` before), not pycuda: the
bindings are NVIDIA's supported ones and what TensorRT's own Python samples
use (NVIDIA/TensorRT `samples/python/common_runtime.py`), they ship as wheels
per CUDA major version with no compile step in the image, and they use the
CUDA runtime's primary context, the one TensorRT uses; pycuda builds against
the local toolkit at install time and brings its own context management
(`pycuda.autoinit`).

Every cudart call returns a tuple whose first item is a `cudaError_t`;
`check` raises on anything but success and returns the rest.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from bodypose_exporter.errors import UserError


def tensorrt() -> ModuleType:
    # Lazy: the registry imports this backend only when tensorrt is chosen, and a
    # missing TensorRT must be a UserError naming the flag, not an ImportError.
    try:
        import tensorrt as trt  # type: ignore[import-not-found]  # only in the GPU pools' image
    except ImportError as exc:
        raise UserError(
            "--engine_backend tensorrt needs TensorRT and a GPU, which exist only in the target "
            "pools' image; here use --engine_backend onnxruntime"
        ) from exc
    return trt  # type: ignore[no-any-return]


def cudart() -> ModuleType:
    try:  # lazy, like tensorrt(): only in the GPU pools' image; two module paths by version
        from cuda.bindings import runtime  # type: ignore[import-not-found]
    except ImportError:
        try:
            from cuda import cudart as runtime  # type: ignore[import-not-found,no-redef]
        except ImportError as exc:
            raise UserError(
                "the TensorRT backend needs NVIDIA's cuda-python bindings (pip install "
                "cuda-python matching the CUDA major version of the image)"
            ) from exc
    return runtime  # type: ignore[no-any-return]


def check(result: Any) -> Any:
    """Unpack a cudart result tuple; raise RuntimeError naming the CUDA error if it failed."""
    rt = cudart()
    err, *rest = result if isinstance(result, tuple) else (result,)
    if err != rt.cudaError_t.cudaSuccess:
        _, text = rt.cudaGetErrorString(err)
        detail = text.decode() if isinstance(text, bytes) else str(text)
        raise RuntimeError(f"CUDA error {err}: {detail}")
    if not rest:
        return None
    return rest[0] if len(rest) == 1 else tuple(rest)
