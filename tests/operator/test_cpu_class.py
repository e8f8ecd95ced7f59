"""A CPU pool's int8 class from Node Feature Discovery's labels (`controller/cpu_class.py`)."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from bodypose_operator.controller import cpu_class
from bodypose_operator.controller.cluster import Cluster, KubeCluster, label_selector
from bodypose_operator.controller.cpu_class import PoolClass, pool_int8_class
from tests.support.operator_fakes import RecordedCluster

CPU_POOL = {"bodypose.dev/pool": "cpu"}


def node(arch: str = "amd64", *features: str, **extra: str) -> dict[str, str]:
    """A node's labels: the kubelet's arch and NFD's `cpu-cpuid.<NAME>=true` per feature."""
    labels = {cpu_class.ARCH_LABEL: arch, **extra}
    labels.update({cpu_class.CPUID_PREFIX + f: "true" for f in features})
    return labels


SKYLAKE = node("amd64", "AVX2", "AVX512F", "AVX512BW", "FMA3")
CASCADE_LAKE = node("amd64", "AVX2", "AVX512BW", "AVX512VNNI")
ALDER_LAKE = node("amd64", "AVX2", "AVXVNNI")
SAPPHIRE_RAPIDS = node("amd64", "AVX2", "AVX512BW", "AVX512VNNI", "AMXTILE", "AMXINT8")
EPYC_ZEN2 = node("amd64", "AVX2", "FMA3")
GRAVITON3 = node("arm64", "ASIMD", "ASIMDDP", "SVE")


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (SAPPHIRE_RAPIDS, "x86-amx"),
        (CASCADE_LAKE, "x86-vnni"),
        (ALDER_LAKE, "x86-vnni"),
        (SKYLAKE, "x86-avx512"),
        (EPYC_ZEN2, "x86-avx2"),
        (node("amd64", "SSE42"), "x86"),  # labelled, no int8 set of ours
        (node("amd64"), None),  # no NFD labels: unknown
        (GRAVITON3, "arm64"),  # NFD cannot label i8mm: every Arm node is arm64
        (node("arm64"), "arm64"),
        ({cpu_class.CPUID_PREFIX + "AVX512VNNI": "true"}, "x86-vnni"),  # no arch label
        ({cpu_class.CPUID_PREFIX + "ASIMDDP": "true"}, "arm64"),
        (node("amd64", "AVX512VNNI", **{cpu_class.AVX2: "false"}), "x86-vnni"),
    ],
)
def test_one_nodes_class_from_its_labels(labels: dict[str, str], expected: str | None) -> None:
    assert cpu_class.node_int8_class(labels) == expected


@pytest.mark.parametrize(
    "nodes",
    [
        [("cpu-a", CASCADE_LAKE)],
        [("cpu-a", CASCADE_LAKE), ("cpu-b", ALDER_LAKE)],  # two CPUs, one class
    ],
)
def test_nodes_that_agree_give_their_class_and_no_reason(
    nodes: list[tuple[str, dict[str, str]]],
) -> None:
    assert pool_int8_class(nodes, CPU_POOL) == PoolClass("x86-vnni", None)


def test_an_arm_pool_is_built_for_arm64() -> None:
    nodes = [("arm-a", GRAVITON3), ("arm-b", node("arm64", "ASIMD"))]
    assert pool_int8_class(nodes) == PoolClass("arm64", None)


def test_nodes_that_disagree_get_the_portable_x86_build_and_a_reason() -> None:
    nodes = [("node-b", EPYC_ZEN2), ("node-a", CASCADE_LAKE)]
    found = pool_int8_class(nodes, CPU_POOL)
    assert found == PoolClass(
        "x86",
        "the nodes of pool bodypose.dev/pool=cpu disagree on their int8 class (x86-vnni: "
        "node-a; x86-avx2: node-b): built for x86 with int7 weights (uint8 where int7 misses "
        "the gates), right on every x86 CPU",
    )


def test_a_node_without_labels_among_labelled_ones_is_a_disagreement() -> None:
    nodes = [("a", SKYLAKE), ("b", node("amd64")), *((f"v{i}", CASCADE_LAKE) for i in range(5))]
    found = pool_int8_class(nodes, CPU_POOL)
    assert found.name == "x86"
    assert found.reason is not None
    assert (
        "(x86-vnni: v0, v1, v2 and 2 more; x86-avx512: a; no cpu-cpuid labels: b)" in found.reason
    )


def test_a_pool_without_nfd_labels_says_so() -> None:
    found = pool_int8_class([("a", node("amd64")), ("b", node("amd64"))], CPU_POOL)
    assert found.name == "x86"
    assert found.reason == (
        "no node of pool bodypose.dev/pool=cpu carries Node Feature Discovery's cpu-cpuid "
        "labels (feature.node.kubernetes.io/cpu-cpuid.*): built for x86 with int7 weights "
        "(uint8 where int7 misses the gates), right on every x86 CPU; install Node Feature "
        "Discovery to build for the pool's own CPUs"
    )


def test_no_node_selected_says_so() -> None:
    found = pool_int8_class([], {"b": "2", "a": "1"})
    assert found == PoolClass(
        "x86",
        "no node matches the nodeSelector pool a=1,b=2: its CPUs cannot be read; built for x86 "
        "with int7 weights (uint8 where int7 misses the gates), right on every x86 CPU",
    )
    assert "(no nodeSelector: every node)" in (pool_int8_class([]).reason or "")


def test_mixed_architectures_and_unknown_ones_get_the_portable_build() -> None:
    mixed = pool_int8_class([("x", CASCADE_LAKE), ("r", GRAVITON3)])
    assert mixed.name == "x86" and mixed.reason and "x86-vnni: x; arm64: r" in mixed.reason
    power = pool_int8_class([("p", node("ppc64le", "ALTIVEC"))])
    assert power.name == "x86" and power.reason and "are ppc64le, which has no int8" in power.reason


def test_the_fake_and_the_client_select_nodes_by_the_node_selector() -> None:
    fake = RecordedCluster()
    fake.nodes = {
        "cpu-a": {**CASCADE_LAKE, **CPU_POOL},
        "cpu-b": {**EPYC_ZEN2, **CPU_POOL},
        "gpu-a": {"nvidia.com/gpu.product": "A100"},
    }
    cluster: Cluster = fake
    assert [n for n, _ in cluster.node_labels(CPU_POOL)] == ["cpu-a", "cpu-b"]
    assert len(cluster.node_labels({})) == 3
    assert cluster.node_labels({"bodypose.dev/pool": "gpu"}) == []
    assert label_selector({"b": "2", "a": "1"}) == "a=1,b=2"

    calls: list[str] = []

    def list_node(label_selector: str) -> Any:
        calls.append(label_selector)
        item = SimpleNamespace(metadata=SimpleNamespace(name="cpu-a", labels=CASCADE_LAKE))
        return SimpleNamespace(items=[item])

    kube = KubeCluster.__new__(KubeCluster)
    kube.core = SimpleNamespace(list_node=list_node)  # type: ignore[assignment]
    assert kube.node_labels(CPU_POOL) == [("cpu-a", CASCADE_LAKE)]
    assert calls == ["bodypose.dev/pool=cpu"]  # one list call, the selector as labels

    def forbidden(label_selector: str) -> Any:
        raise ApiException(status=403, reason="Forbidden")

    kube.core = SimpleNamespace(list_node=forbidden)  # type: ignore[assignment]
    with pytest.raises(PermissionError, match="nodes"):
        kube.node_labels(CPU_POOL)


def test_the_chart_lets_the_operator_list_nodes_and_nothing_more() -> None:
    """`node_labels` lists nodes (cluster-scoped: the ClusterRole); nothing watches or
    writes them, nor gets one. tests/operator/test_rbac.py checks `can-i` and the calls."""
    templates = Path(__file__).resolve().parents[2] / "charts/bodypose-operator/templates"
    grants = [
        (path.name, verbs)
        for path in sorted(templates.glob("*.yaml"))
        for verbs in re.findall(
            r'resources: \["nodes"\]\s*\n\s*verbs: (\[[^]]*\])', path.read_text()
        )
    ]
    assert grants == [("rbac.yaml", '["list"]')]
