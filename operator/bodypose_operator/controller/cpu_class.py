"""The int8 class of a CPU pool, read from its nodes' labels before the build Job exists.

ONNX Runtime's int8 artifact differs by the CPU's int8 kernels: on x86
without VNNI its uint8 x int8 kernels add products in saturating 16-bit lanes,
so an artifact for those CPUs carries int7 weights (uint8 where those miss the
gates), which no x86 kernel can saturate, while VNNI, AMX and Arm
kernels accumulate in 32 bits and take int8 weights (the exporter's
`engines/ort/hardware.py` says why, with its sources). Only the build pod can
read /proc/cpuinfo; the operator reads the labels Node Feature Discovery puts
on the nodes the target's nodeSelector selects, so that the class is part of
the target's identity before the Job is made, and the Job is told to build for
it (`bpnet-build --int8_instruction_set CLASS`, which refuses another CPU).

Node Feature Discovery labels every CPUID feature a node has as
`feature.node.kubernetes.io/cpu-cpuid.<NAME>=true` ("Feature labels", CPU:
https://kubernetes-sigs.github.io/node-feature-discovery/v0.14/usage/features.html).
On x86 the names are those of klauspost/cpuid, which it uses (`AVX2`,
`AVX512BW`, `AVX512VNNI`, `AVXVNNI`, `AMXINT8`); on arm64 it reads AT_HWCAP
only (kubernetes-sigs/node-feature-discovery `source/cpu/cpuid_arm64.go`), so
`ASIMDDP` is labelled and i8mm (an AT_HWCAP2 bit) never is. Hence every arm64
pool is built for `arm64`: the labels cannot tell an i8mm node from a
dotprod one, and an Arm artifact is the same on every Arm class (int8
weights: no Arm kernel saturates), which the exporter accepts on any arm64
CPU. The architecture is the kubelet's `kubernetes.io/arch` label.

Where the selected nodes disagree, carry no such labels, or none is selected,
the pool is built for `x86`: int7 weights (uint8 where int7 misses the gates),
right on every x86 CPU (no x86 kernel saturates on them), and the reason goes
to the target's status.

Pure: the nodes' names and labels in, the class and its reason out; the
cluster is read by `Cluster.node_labels`. The class names are the exporter's
(`engines/ort/hardware.py`, checked by tests/contract/test_cpu_classes.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

#: Node Feature Discovery's prefix of CPUID feature labels (value "true").
CPUID_PREFIX = "feature.node.kubernetes.io/cpu-cpuid."
AMXINT8 = CPUID_PREFIX + "AMXINT8"
AVX512VNNI = CPUID_PREFIX + "AVX512VNNI"
AVXVNNI = CPUID_PREFIX + "AVXVNNI"
AVX512BW = CPUID_PREFIX + "AVX512BW"
AVX2 = CPUID_PREFIX + "AVX2"
#: arm64: the dot-product instructions (AT_HWCAP's asimddp); i8mm has no label.
ASIMDDP = CPUID_PREFIX + "ASIMDDP"
ASIMD = CPUID_PREFIX + "ASIMD"
#: The kubelet's label of a node's architecture (Go's GOARCH: amd64, arm64).
ARCH_LABEL = "kubernetes.io/arch"

#: x86 int8 classes, best first: (class, the labels any one of which puts a node in it),
#: as the exporter's `hardware._X86_INT8_CLASSES` reads /proc/cpuinfo flags.
X86_INT8_CLASSES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("x86-amx", (AMXINT8,)),
    ("x86-vnni", (AVX512VNNI, AVXVNNI)),
    ("x86-avx512", (AVX512BW,)),
    ("x86-avx2", (AVX2,)),
)
#: Every class the operator can name, the exporter's `hardware.INT8_CLASSES` order.
INT8_CLASSES: tuple[str, ...] = (
    *(name for name, _ in X86_INT8_CLASSES),
    "x86",
    "arm64-i8mm",
    "arm64-dotprod",
    "arm64",
)
#: Right on every x86 CPU (int7 or uint8 weights): what a pool of unknown or mixed CPUs gets.
PORTABLE = "x86"
ARM64 = "arm64"
_UNLABELLED = "no cpu-cpuid labels"
_SHOWN = 3  # node names shown per class in a reason


@dataclass(frozen=True)
class PoolClass:
    """The int8 class a pool's artifact is built for, and why it is not the pool's own
    (None when every selected node agrees on it)."""

    name: str
    reason: str | None = None


def _architecture(labels: Mapping[str, str]) -> str:
    """amd64, arm64 or another GOARCH; without the kubelet's label, what the CPUID labels
    suggest (Arm's ASIMD names are not x86's)."""
    arch = labels.get(ARCH_LABEL)
    if arch:
        return arch
    return ARM64 if ASIMD in labels or ASIMDDP in labels else "amd64"


def _has_cpuid_labels(labels: Mapping[str, str]) -> bool:
    return any(key.startswith(CPUID_PREFIX) for key in labels)


def node_int8_class(labels: Mapping[str, str]) -> str | None:
    """One node's class from its labels; None where Node Feature Discovery labelled no
    CPUID feature on an x86 node (its class cannot be read)."""
    arch = _architecture(labels)
    if arch == ARM64:
        return ARM64  # see the module docstring: the labels cannot tell Arm classes apart
    if arch != "amd64":
        return arch  # no int8 class of ours: it disagrees with every other
    if not _has_cpuid_labels(labels):
        return None
    present = {key for key, value in labels.items() if value == "true"}
    return next(
        (name for name, keys in X86_INT8_CLASSES if any(k in present for k in keys)), PORTABLE
    )


def _pool(selector: Mapping[str, str] | None) -> str:
    if not selector:
        return "of the pool (no nodeSelector: every node)"
    return "of pool " + ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


_PORTABLE_BUILD = (
    "built for x86 with int7 weights (uint8 where int7 misses the gates), right on every x86 CPU"
)


def pool_int8_class(
    nodes: list[tuple[str, dict[str, str]]], selector: Mapping[str, str] | None = None
) -> PoolClass:
    """The class every node of the pool agrees on, else `x86` and the reason for the status.

    `nodes`: (name, labels) of each node the target's nodeSelector selects
    (`Cluster.node_labels`); `selector` only names the pool in the reason.
    """
    pool = _pool(selector)
    if not nodes:
        return PoolClass(
            PORTABLE,
            f"no node matches the nodeSelector {pool.removeprefix('of ')}: its CPUs cannot be "
            f"read; {_PORTABLE_BUILD}",
        )
    by_class: dict[str, list[str]] = {}
    for name, labels in sorted(nodes):
        found = node_int8_class(labels)
        by_class.setdefault(_UNLABELLED if found is None else found, []).append(name)
    if set(by_class) == {_UNLABELLED}:
        return PoolClass(
            PORTABLE,
            f"no node {pool} carries Node Feature Discovery's cpu-cpuid labels "
            f"({CPUID_PREFIX}*): {_PORTABLE_BUILD}; install Node Feature Discovery to build "
            "for the pool's own CPUs",
        )
    if len(by_class) == 1:
        (only,) = by_class
        if only in INT8_CLASSES:
            return PoolClass(only)
        return PoolClass(
            PORTABLE, f"the nodes {pool} are {only}, which has no int8 class: {_PORTABLE_BUILD}"
        )
    ranked = sorted(by_class, key=lambda c: INT8_CLASSES.index(c) if c in INT8_CLASSES else 99)
    listed = "; ".join(f"{c}: {_names(by_class[c])}" for c in ranked)
    return PoolClass(
        PORTABLE, f"the nodes {pool} disagree on their int8 class ({listed}): {_PORTABLE_BUILD}"
    )
