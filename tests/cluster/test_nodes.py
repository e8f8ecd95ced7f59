"""The dev cluster's CPU pool carries the labels Node Feature Discovery would set here
(`devcluster/nodes.py`): pure functions from /proc/cpuinfo text, no cluster started."""

from __future__ import annotations

from pathlib import Path

from devcluster.nodes import (
    CPUID_PREFIX,
    POOLS,
    host_cpu_labels,
    nfd_cpu_labels,
    node_manifest,
)

EPYC_AVX2 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B12
flags\t\t: fpu sse sse2 pni ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2
processor\t: 1
flags\t\t: fpu avx512_vnni
"""
SAPPHIRE_RAPIDS = (
    "flags : sse4_2 avx avx2 fma avx512f avx512bw avx512_vnni avx_vnni amx_tile amx_int8 "
    "amx_bf16 avx512_fp16\n"
)
GRAVITON3 = "processor : 0\nFeatures : fp asimd evtstrm aes asimdhp asimddp sve i8mm bf16\n"


def cpuid(*names: str) -> dict[str, str]:
    return {CPUID_PREFIX + name: "true" for name in names}


def test_x86_flags_become_nfds_cpuid_labels() -> None:
    # The first processor's flags only; NFD's names (fma is FMA3); blacklisted ones left out.
    assert nfd_cpu_labels(EPYC_AVX2, "x86_64") == {
        "kubernetes.io/arch": "amd64",
        **cpuid("AVX", "AVX2", "FMA3"),
    }
    assert nfd_cpu_labels(SAPPHIRE_RAPIDS, "x86_64") == {
        "kubernetes.io/arch": "amd64",
        **cpuid("AVX", "AVX2", "FMA3", "AVX512F", "AVX512BW", "AVX512VNNI", "AVXVNNI"),
        **cpuid("AMXTILE", "AMXINT8", "AMXBF16", "AVX512FP16"),
    }


def test_arm_features_become_nfds_hwcap_labels_without_i8mm() -> None:
    assert nfd_cpu_labels(GRAVITON3, "aarch64") == {
        "kubernetes.io/arch": "arm64",
        **cpuid("FP", "ASIMD", "ASIMDHP", "ASIMDDP", "SVE"),
    }


def test_no_cpuinfo_or_another_architecture_gives_the_arch_alone() -> None:
    assert nfd_cpu_labels("", "x86_64") == {"kubernetes.io/arch": "amd64"}
    assert nfd_cpu_labels(EPYC_AVX2, "ppc64le") == {"kubernetes.io/arch": "ppc64le"}
    assert host_cpu_labels(Path("/nonexistent/cpuinfo"))["kubernetes.io/arch"]


def test_only_the_cpu_pool_carries_the_hosts_labels() -> None:
    host = nfd_cpu_labels(SAPPHIRE_RAPIDS, "x86_64")
    for pool in POOLS:
        labels = node_manifest(pool, 0, host)["metadata"]["labels"]
        nfd = {k for k in labels if k.startswith(CPUID_PREFIX)}
        assert (nfd == {k for k in host if k.startswith(CPUID_PREFIX)}) is (pool.name == "cpu")
        assert bool(nfd) is (pool.name == "cpu")
        assert labels["bodypose.dev/pool"] == pool.name
    (cpu,) = [p for p in POOLS if p.host_cpu]
    by_default = node_manifest(cpu, 0)["metadata"]["labels"]
    assert by_default == node_manifest(cpu, 0, host_cpu_labels())["metadata"]["labels"]
