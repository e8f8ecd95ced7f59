"""TensorRT's operator part: what its build Job takes beyond the generic arguments.

It checks the GPU it finds against the pool's (`ChecksGpuProduct`), builds int8 by
more than one route (`Int8Routes`), and shares a timing cache per GPU model and
TensorRT version (`SharesTimingCache`): its build's flags for each, as the exporter
spells them (its argument group, `bodypose_exporter/engines/trt/args.py`; the timing
cache's folder is a build request's, `bodypose_exporter/stages/build_request.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

from bodypose_contract.backends import TENSORRT
from bodypose_operator.api.backend_row import Backend, BuildImage

#: The spec's `engine.int8Route` values, as the build's --int8_route spells them.
_ROUTES = {"calBin": "cal_bin", "qdq": "qdq"}


@dataclass(frozen=True)
class TensorRT:
    """The operator part of the TensorRT backend."""

    def gpu_product_arguments(self, product: str) -> list[str]:
        return ["--expected_gpu_product", product]

    def int8_route_arguments(self, route: str) -> list[str]:
        return ["--int8_route", _ROUTES[route]]

    def timing_cache_arguments(self, directory: str) -> list[str]:
        return ["--timing_cache_dir", directory]


#: Its row of the backend table.
ROW = Backend.of(
    TENSORRT,
    summary="a TensorRT engine built on the pool's GPU",
    build_image=BuildImage.GPU,
    # No CPU: its figures are CUDA-event times of the GPU's work, and a Kueue
    # ClusterQueue covering only nvidia.com/gpu must still admit its Jobs.
    default_resources={"limits": {"nvidia.com/gpu": "1"}},
    options=frozenset({"hardwareCompatibility"}),
    image_in_identity=True,  # an engine loads only in the TensorRT that built it
    part=TensorRT(),
)
