"""Fake node pools for kwok: three GPU pools and a CPU pool.

Labels are those NVIDIA's GPU feature discovery sets
(github.com/NVIDIA/gpu-feature-discovery: nvidia.com/gpu.product,
nvidia.com/gpu.compute.major/minor, nvidia.com/gpu.memory in MiB, nvidia.com/gpu.count,
nvidia.com/gpu.family), every node has `bodypose.dev/pool=<pool>`,
GPU nodes carry the usual `nvidia.com/gpu=present:NoSchedule` taint and
allocatable `nvidia.com/gpu`. kwok manages nodes annotated
`kwok.x-k8s.io/node: fake` (the node Stages of hack/cluster/kwok-stages.yaml make
them Ready and renew their leases).

The CPU pool's pods run on this machine (the executor plays its kubelet), so
its node carries the labels Node Feature Discovery would set here: one
`feature.node.kubernetes.io/cpu-cpuid.<NAME>=true` per CPU feature of
/proc/cpuinfo that NFD names ("Feature labels", CPU:
https://kubernetes-sigs.github.io/node-feature-discovery/v0.14/usage/features.html),
and this machine's `kubernetes.io/arch`. The operator reads the pool's int8
class from them, and the build Job, run here, checks it against
/proc/cpuinfo, as on a real cluster with NFD.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

POOL_LABEL = "bodypose.dev/pool"
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
CPUID_PREFIX = "feature.node.kubernetes.io/cpu-cpuid."
#: /proc/cpuinfo flag -> NFD's cpuid name, for the SIMD and int8 features (those the
#: exporter's engines/ort/hardware.py reads, and their kin). x86: klauspost/cpuid's
#: names, which NFD publishes (F16C and SSE4.2 are in NFD's default attributeBlacklist,
#: so left out); arm64: NFD's AT_HWCAP names (source/cpu/cpuid_arm64.go), which have no
#: i8mm, bf16 or sve2.
NFD_CPUID_NAMES = {
    "x86": {
        "avx": "AVX",
        "avx2": "AVX2",
        "fma": "FMA3",
        "avx512f": "AVX512F",
        "avx512bw": "AVX512BW",
        "avx512cd": "AVX512CD",
        "avx512dq": "AVX512DQ",
        "avx512vl": "AVX512VL",
        "avx512_vnni": "AVX512VNNI",
        "avx_vnni": "AVXVNNI",
        "avx512_bf16": "AVX512BF16",
        "avx512_fp16": "AVX512FP16",
        "amx_tile": "AMXTILE",
        "amx_int8": "AMXINT8",
        "amx_bf16": "AMXBF16",
    },
    "arm64": {
        "fp": "FP",
        "asimd": "ASIMD",
        "fphp": "FPHP",
        "asimdhp": "ASIMDHP",
        "asimddp": "ASIMDDP",
        "sve": "SVE",
    },
}
#: Python's platform.machine() -> the kubelet's kubernetes.io/arch (Go's GOARCH).
GOARCH = {"x86_64": "amd64", "AMD64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


@dataclass(frozen=True)
class Pool:
    name: str
    nodes: int
    gpu_product: str | None = None
    compute: tuple[int, int] | None = None
    gpu_memory_mib: int | None = None
    gpus_per_node: int = 0
    gpu_family: str | None = None
    #: Its pods run on this machine: its nodes carry this CPU's NFD labels (`host_cpu_labels`).
    host_cpu: bool = False


POOLS = (
    Pool("a100", 2, "NVIDIA-A100-SXM4-80GB", (8, 0), 81920, 8, "ampere"),
    Pool("t4", 2, "Tesla-T4", (7, 5), 15360, 1, "turing"),
    # A pool TensorRT-RTX builds for (compute capability 8.9), with no GPU on this machine.
    Pool("l4", 1, "NVIDIA-L4", (8, 9), 23034, 1, "ada-lovelace"),
    Pool("cpu", 1, host_cpu=True),
)


def cpuinfo_flags(text: str) -> set[str]:
    """The first processor's feature flags in the text of /proc/cpuinfo (`flags` on x86,
    `Features` on Arm)."""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            return set(value.split())
    return set()


def nfd_cpu_labels(cpuinfo: str, machine: str) -> dict[str, str]:
    """The labels Node Feature Discovery would set on a machine with this /proc/cpuinfo and
    platform.machine(): its arch, and `cpu-cpuid.<NAME>=true` per feature it names."""
    arch = GOARCH.get(machine, machine)
    names = NFD_CPUID_NAMES.get("x86" if arch == "amd64" else arch, {})
    flags = cpuinfo_flags(cpuinfo)
    labels = {"kubernetes.io/arch": arch}
    labels.update({CPUID_PREFIX + name: "true" for flag, name in names.items() if flag in flags})
    return labels


def host_cpu_labels(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, str]:
    """`nfd_cpu_labels` of this machine."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        text = ""
    return nfd_cpu_labels(text, platform.machine())


def node_manifest(
    pool: Pool, index: int, host_labels: dict[str, str] | None = None
) -> dict[str, Any]:
    """The Node of a pool; `host_labels` (default: this machine's) on a `host_cpu` pool."""
    labels = {
        POOL_LABEL: pool.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": f"{pool.name}-{index}",
        "type": "kwok",
    }
    if pool.host_cpu:
        labels.update(host_cpu_labels() if host_labels is None else host_labels)
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
    host = host_cpu_labels()
    for pool in pools:
        for i in range(pool.nodes):
            manifest = node_manifest(pool, i, host)
            core.create_node(manifest)
            names.append(manifest["metadata"]["name"])
    return names
