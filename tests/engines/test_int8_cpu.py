"""CPU int8 is right on the CPU it runs on, with or without VNNI (`engines/ort/hardware.py`).

The same sample model and cal.bin are built twice: for this machine's int8
class, and for the other kind (a VNNI class if this CPU has none, a
saturating one if it has VNNI). Both run here. Where this CPU saturates
(x86 without VNNI), the artifact built for it (uint8 weights) agrees with
FP32 inside the int8 gates while the one built for VNNI (int8 weights) is
worse and is refused by the runner unless forced; where the CPU does not
saturate, both artifacts agree with FP32 inside the gates. Nothing is
skipped on either kind of machine.
"""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from bodypose_exporter.engines.ort import hardware
from bodypose_exporter.engines.ort.builder import OnnxRuntimeBuilder
from bodypose_exporter.engines.ort.runner import OrtRunner, SaturatingCpuError
from bodypose_exporter.verification import reference as references
from bodypose_exporter.verification.gates import DEFAULT_GATES
from bodypose_exporter.verification.verify import verify
from tests.conftest import FIGURES
from tests.engines.conftest import Calibrated
from tests.support.builds import build_request

HERE = hardware.describe()["int8InstructionSet"]
SATURATES_HERE = hardware.int8_weights(HERE) == "uint8"
OTHER = "x86-vnni" if SATURATES_HERE else "x86-avx2"


def _build(exported: Path, calibrated: Calibrated, out: Path, cpu_class: str | None) -> Path:
    built = OnnxRuntimeBuilder().build(
        build_request(
            exported / "bpnet_model.onnx", out, precision="int8",
            calibration_cache=calibrated.cal_bin, int8_instruction_set=cpu_class,
        )
    )  # fmt: skip
    recorded = {p.key: p.value for p in onnx.load(str(built.path)).metadata_props}
    assert recorded[hardware.METADATA_KEYS["instructionSet"]] == (cpu_class or HERE)
    assert recorded[hardware.METADATA_KEYS["weights"]] == hardware.int8_weights(cpu_class or HERE)
    return Path(built.path)


def _figures(artifact: Path, reference: references.Reference) -> dict[str, float]:
    runner = OrtRunner(artifact, allow_saturating=True)
    try:
        return verify(runner, reference, "int8", {}).figures
    finally:
        runner.close()


def test_the_artifact_built_for_this_cpu_agrees_with_fp32_and_the_other_kind_differs(
    exported: Path, calibrated: Calibrated, tmp_path: Path
) -> None:
    onnx = exported / "bpnet_model.onnx"
    height, width = references.input_hw(onnx)
    reference = references.from_images(
        onnx, references.image_paths(calibrated.images, 8), height, width
    )
    own = _build(exported, calibrated, tmp_path / "own.onnx", None)
    other = _build(exported, calibrated, tmp_path / "other.onnx", OTHER)
    mine, theirs = _figures(own, reference), _figures(other, reference)
    gates = DEFAULT_GATES["int8"]
    FIGURES.append(
        f"engines: ORT int8 on this {HERE} CPU, 224x320, 8 sample images: built for {HERE} "
        f"({hardware.int8_weights(HERE)} weights) cosine {mine['cosine']:.4f} peaks "
        f"{mine['peakAgreement']:.3f}; built for {OTHER} ({hardware.int8_weights(OTHER)} "
        f"weights) cosine {theirs['cosine']:.4f} peaks {theirs['peakAgreement']:.3f}"
    )
    assert mine["cosine"] >= gates["cosine"] and mine["peakAgreement"] >= gates["peakAgreement"]
    if SATURATES_HERE:
        # int8 weights through saturating 16-bit sums: measurably further from FP32.
        assert theirs["maxAbsDiff"] > mine["maxAbsDiff"]
        assert theirs["cosine"] < mine["cosine"]
        with pytest.raises(SaturatingCpuError, match=f"built for {OTHER} CPUs.*this CPU is {HERE}"):
            OrtRunner(other)
    else:
        # uint8 weights are exact on VNNI too: both kinds agree inside the gates here.
        assert theirs["cosine"] >= gates["cosine"]
        assert theirs["peakAgreement"] >= gates["peakAgreement"]
        OrtRunner(other).close()


@pytest.mark.parametrize(
    ("flags", "machine", "expected", "weights"),
    [
        ({"avx2", "fma"}, "x86_64", "x86-avx2", "uint8"),
        ({"avx2", "avx512f", "avx512bw"}, "x86_64", "x86-avx512", "uint8"),
        ({"avx2", "avx512bw", "avx512_vnni"}, "x86_64", "x86-vnni", "int8"),
        ({"avx2", "avx_vnni"}, "x86_64", "x86-vnni", "int8"),
        ({"avx512_vnni", "amx_tile", "amx_int8"}, "x86_64", "x86-amx", "int8"),
        ({"sse4_2"}, "x86_64", "x86", "uint8"),
        ({"asimd", "asimddp"}, "aarch64", "arm64-dotprod", "int8"),
        ({"asimd"}, "aarch64", "arm64", "int8"),
    ],
)
def test_int8_class_and_weights_by_cpu_flags(
    flags: set[str], machine: str, expected: str, weights: str
) -> None:
    assert hardware.int8_instruction_set(flags, machine) == expected
    assert hardware.int8_weights(expected) == weights
