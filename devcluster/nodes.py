"""Fake node pools for kwok: three GPU pools and a CPU pool.

Labels are those NVIDIA's GPU feature discovery sets
(github.com/NVIDIA/gpu-feature-discovery: nvidia.com/gpu.product,
nvidia.com/gpu.compute.major/minor, nvidia.com/gpu.memory in MiB, nvidia.com/gpu.count,
nvidia.com/gpu.family), every node has `bodypose.dev/pool=<pool>`,
GPU nodes carry the usual `nvidia.com/gpu=present:NoSchedule` taint and
allocatable `nvidia.com/gpu`. kwok manages nodes annotated
`kwok.x-k8s.io/node: fake` (the node Stages of hack/cluster/kwok-stages.yaml make
them Ready and renew their leases).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

POOL_LABEL = "bodypose.dev/pool"
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}


@dataclass(frozen=True)
class Pool:
    name: str
    nodes: int
    gpu_product: str | None = None
    compute: tuple[int, int] | None = None
    gpu_memory_mib: int | None = None
    gpus_per_node: int = 0
    gpu_family: str | None = None


POOLS = (
    Pool("a100", 2, "NVIDIA-A100-SXM4-80GB", (8, 0), 81920, 8, "ampere"),
    Pool("t4", 2, "Tesla-T4", (7, 5), 15360, 1, "turing"),
    # A pool TensorRT-RTX builds for (compute capability 8.9), with no GPU on this machine.
    Pool("l4", 1, "NVIDIA-L4", (8, 9), 23034, 1, "ada-lovelace"),
    Pool("cpu", 1),
)


def node_manifest(pool: Pool, index: int) -> dict[str, Any]:
    labels = {
        POOL_LABEL: pool.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": f"{pool.name}-{index}",
        "type": "kwok",
    }
    capacity = {"cpu": "32", "memory": "256Gi", "pods": "110"}
    taints: list[dict[str, str]] = []
    if pool.gpu_product:
        assert pool.compute is not None and pool.gpu_memory_mib is not None
        labels.update(
            {
                "nvidia.com/gpu.present": "true",
                "nvidia.com/gpu.product": pool.gpu_product,
                "nvidia.com/gpu.compute.major": str(pool.compute[0]),
                "nvidia.com/gpu.compute.minor": str(pool.compute[1]),
                "nvidia.com/gpu.memory": str(pool.gpu_memory_mib),
                "nvidia.com/gpu.count": str(pool.gpus_per_node),
                "nvidia.com/gpu.family": pool.gpu_family or "",
            }
        )
        capacity["nvidia.com/gpu"] = str(pool.gpus_per_node)
        taints.append(GPU_TAINT)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": f"{pool.name}-{index}",
            "labels": labels,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {"taints": taints},
        "status": {"capacity": capacity, "allocatable": capacity},
    }


def create_pools(api_client: Any, pools: tuple[Pool, ...] = POOLS) -> list[str]:
    from kubernetes import client

    core: Any = client.CoreV1Api(api_client)  # takes plain manifests
    names = []
    for pool in pools:
        for i in range(pool.nodes):
            manifest = node_manifest(pool, i)
            core.create_node(manifest)
            names.append(manifest["metadata"]["name"])
    return names
