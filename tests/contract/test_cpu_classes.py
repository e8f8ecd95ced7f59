"""The CPU int8 classes: what the operator reads from a pool's labels is what the exporter builds.

The operator names a pool's class from Node Feature Discovery's labels
(`controller/cpu_class.py`) and passes it to the build Job as
`--int8_instruction_set`; the exporter reads its own node's class from
/proc/cpuinfo (`engines/ort/hardware.py`) and refuses another. Both sides
must name the same classes, in the same order, from the same CPU features:
NFD's x86 label names are the kernel's /proc/cpuinfo flags without the
underscore, upper case (klauspost/cpuid's names: `avx512_vnni` is
`AVX512VNNI`), and the class a pool of mixed CPUs gets must be one the
exporter builds with weights no x86 kernel saturates (int7, uint8) and
accepts on every x86 CPU.
"""

from __future__ import annotations

import pytest

from bodypose_exporter.cli.args import INT8_INSTRUCTION_SETS
from bodypose_exporter.engines.ort import hardware
from bodypose_operator.controller import cpu_class


def test_the_operator_names_the_exporters_classes_in_its_order() -> None:
    assert cpu_class.INT8_CLASSES == hardware.INT8_CLASSES
    assert list(cpu_class.INT8_CLASSES) == INT8_INSTRUCTION_SETS  # the flag's choices


def test_each_x86_class_is_read_from_the_same_features() -> None:
    exporter = [
        (name, tuple(cpu_class.CPUID_PREFIX + f.replace("_", "").upper() for f in flags))
        for name, flags in hardware._X86_INT8_CLASSES
    ]
    assert list(cpu_class.X86_INT8_CLASSES) == exporter


@pytest.mark.parametrize(
    "flags", [{"avx2"}, {"avx512bw", "avx2"}, {"avx_vnni"}, {"amx_int8"}, set()]
)
def test_a_node_labelled_as_nfd_would_label_this_cpu_gets_the_exporters_class(
    flags: set[str],
) -> None:
    labels = {cpu_class.ARCH_LABEL: "amd64", "feature.node.kubernetes.io/cpu-cpuid.SSE42": "true"}
    labels.update({cpu_class.CPUID_PREFIX + f.replace("_", "").upper(): "true" for f in flags})
    assert cpu_class.node_int8_class(labels) == hardware.int8_instruction_set(flags, "x86_64")


def test_the_portable_class_is_int7_and_accepted_on_every_cpu_class_of_its_architecture() -> None:
    assert cpu_class.PORTABLE in hardware.BASELINE_CLASSES
    assert hardware.int8_weights(cpu_class.PORTABLE) == "int7"
    assert hardware.FALLBACK_WEIGHTS["int7"] == "uint8"
    assert cpu_class.ARM64 in hardware.BASELINE_CLASSES
    for here in hardware.INT8_CLASSES:
        if hardware.architecture_of(here) == cpu_class.PORTABLE:
            hardware.check_int8_class(cpu_class.PORTABLE, here)
        else:
            hardware.check_int8_class(cpu_class.ARM64, here)


def test_the_dev_clusters_cpu_node_gives_the_class_the_build_reads_here() -> None:
    """The dev cluster labels its CPU node as NFD would this machine (devcluster/nodes.py);
    the operator's class from those labels is the class the build Job reads here, so the
    demo's int8 CPU build is for this CPU and passes its own check."""
    from devcluster.nodes import POOLS, node_manifest

    (pool,) = [p for p in POOLS if p.host_cpu]
    node = node_manifest(pool, 0)
    name, labels = node["metadata"]["name"], node["metadata"]["labels"]
    found = cpu_class.pool_int8_class([(name, labels)], {"bodypose.dev/pool": pool.name})
    here = hardware.describe()["int8InstructionSet"]
    assert found == cpu_class.PoolClass(
        cpu_class.ARM64 if hardware.architecture_of(here) == "arm64" else here
    )
    hardware.check_int8_class(found.name, here)
