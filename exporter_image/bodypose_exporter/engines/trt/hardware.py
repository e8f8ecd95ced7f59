"""What a TensorRT engine is built for: an engine runs only on the GPU model it was built on.

`cudaGetDeviceProperties` (name, compute capability, memory) and the CUDA
runtime and driver versions through cuda-python; TensorRT's own version from
the module. Recorded in the manifest and reported in the resource's status.
"""

from __future__ import annotations

from typing import Any

from bodypose_exporter.engines.trt.runtime import check, cudart, tensorrt


def _version(number: int) -> str:
    """CUDA's integer version (12040) as text ("12.4")."""
    return f"{number // 1000}.{(number % 1000) // 10}"


def describe(device: int = 0) -> dict[str, Any]:
    rt = cudart()
    props = check(rt.cudaGetDeviceProperties(device))
    name = props.name
    return {
        "gpuName": name.decode(errors="replace").rstrip("\x00")
        if isinstance(name, bytes)
        else str(name),
        "computeCapability": f"{props.major}.{props.minor}",
        "gpuMemoryBytes": int(props.totalGlobalMem),
        "tensorrtVersion": str(tensorrt().__version__),
        "cudaRuntimeVersion": _version(int(check(rt.cudaRuntimeGetVersion()))),
        "cudaDriverVersion": _version(int(check(rt.cudaDriverGetVersion()))),
    }


def timing_cache_key(description: dict[str, Any]) -> str:
    """A file-name-safe key for per-GPU-model timing caches: GPU name, CC, TensorRT version.

    A timing cache holds the tactic timings TensorRT measured on one kind of GPU.
    `ITimingCache.combine` skips a cache from any other TensorRT version, and "combining
    caches generated from devices with different device properties may lead to
    functional/performance bugs"
    (https://docs.nvidia.com/deeplearning/tensorrt/latest/_static/c-api/classnvinfer1_1_1_i_timing_cache.html);
    Polygraphy's `EngineBytesFromNetwork` combines the file it saves into with
    `ignore_mismatch=True`. So builds share a cache only on the same GPU model and
    TensorRT version: `NVIDIA_A100-SXM4-40GB-sm8.0-trt10.8.0.43`.
    """
    gpu, cc = description["gpuName"], description["computeCapability"]
    raw = f"{gpu}-sm{cc}-trt{description['tensorrtVersion']}"
    return "".join(c if c.isalnum() or c in ".-" else "_" for c in raw)
