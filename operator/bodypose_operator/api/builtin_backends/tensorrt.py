"""TensorRT's operator part: what its build Job takes beyond the generic arguments.

It checks the GPU it finds against the pool's (`ChecksGpuProduct`), builds int8 by
more than one route (`Int8Routes`), and shares a timing cache per GPU model and
TensorRT version (`SharesTimingCache`): its build's flags for each, as the exporter
spells them (its argument group, `bodypose_exporter/engines/trt/args.py`; the timing
cache's folder is a build request's, `bodypose_exporter/stages/build_request.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

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
