"""CPU int8 is right on the CPU it runs on, with or without VNNI (`engines/ort/hardware.py`).

The same sample model and cal.bin are built twice: for this machine's int8
class, and for the other kind (a VNNI class if this CPU has none, a
saturating one if it has VNNI). Both run here. Where this CPU saturates
(x86 without VNNI), the artifact built for it (int7 weights) agrees with
FP32 inside the int8 gates while the one built for VNNI (int8 weights) is
worse and is refused by the runner unless forced; where the CPU does not
saturate, both artifacts agree with FP32 inside the gates. A machine with
VNNI also runs the saturating case for real, in a process that sees its CPU
as x86-avx2 (`hack/cpumask/run`; skipped only where the CPU cannot fault on
CPUID, and on a saturating machine, where the first test is that case).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import onnx
import onnx.numpy_helper
import pytest

from bodypose_exporter.calibration.qdq import WEIGHT_TYPES
from bodypose_exporter.engines.ort import hardware
from bodypose_exporter.engines.ort.builder import OnnxRuntimeBuilder
from bodypose_exporter.engines.ort.runner import OrtRunner, SaturatingCpuError, check_runs_here
from bodypose_exporter.errors import UserError
from bodypose_exporter.verification import reference as references
from bodypose_exporter.verification.agreement_gates import DEFAULT_GATES
from bodypose_exporter.verification.verify import verify
from tests.conftest import FIGURES
from tests.engines.conftest import Calibrated
from tests.support.builds import build_request
from tests.support.checkout import ROOT, python_env

HERE = hardware.describe()["int8InstructionSet"]
SATURATES_HERE = hardware.saturates(HERE)
OTHER = "x86-vnni" if SATURATES_HERE else "x86-avx2"
CAN_MASK = "cpuid_fault" in Path("/proc/cpuinfo").read_text().split()


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


def compare_kinds(exported: Path, calibrated: Calibrated, out: Path) -> dict[str, Any]:
    """Both kinds built and run on this CPU (as the process sees it): the figures, and
    whether the runner refuses the other kind. Run in the test's own process and, under
    hack/cpumask/run, in one that sees a CPU without VNNI."""
    onnx = exported / "bpnet_model.onnx"
    height, width = references.input_hw(onnx)
    reference = references.from_images(
        onnx, references.image_paths(calibrated.images, 8), height, width
    )
    own = _build(exported, calibrated, out / "own.onnx", None)
    other = _build(exported, calibrated, out / "other.onnx", OTHER)
    try:
        OrtRunner(other).close()
        refused = ""
    except SaturatingCpuError as exc:
        refused = str(exc)
    return {
        "here": HERE,
        "other": OTHER,
        "mine": _figures(own, reference),
        "theirs": _figures(other, reference),
        "refused": refused,
    }


def _judge(found: dict[str, Any]) -> None:
    here, other, mine, theirs = found["here"], found["other"], found["mine"], found["theirs"]
    gates = DEFAULT_GATES["int8"]
    FIGURES.append(
        f"engines: ORT int8 on this {here} CPU, 224x320, 8 sample images: built for {here} "
        f"({hardware.int8_weights(here)} weights) cosine {mine['cosine']:.4f} peaks "
        f"{mine['peakAgreement']:.3f}; built for {other} ({hardware.int8_weights(other)} "
        f"weights) cosine {theirs['cosine']:.4f} peaks {theirs['peakAgreement']:.3f}"
    )
    assert mine["cosine"] >= gates["cosine"] and mine["peakAgreement"] >= gates["peakAgreement"]
    if hardware.saturates(here):
        # int8 weights through saturating 16-bit sums: measurably further from FP32.
        assert theirs["maxAbsDiff"] > mine["maxAbsDiff"]
        assert theirs["cosine"] < mine["cosine"]
        assert re.search(f"built for {other} CPUs.*this CPU is {here}", found["refused"])
    else:
        # int7 weights are exact on VNNI too: both kinds agree inside the gates here.
        assert theirs["cosine"] >= gates["cosine"]
        assert theirs["peakAgreement"] >= gates["peakAgreement"]
        assert found["refused"] == ""


def test_the_artifact_built_for_this_cpu_agrees_with_fp32_and_the_other_kind_differs(
    exported: Path, calibrated: Calibrated, tmp_path: Path
) -> None:
    _judge(compare_kinds(exported, calibrated, tmp_path))


@pytest.mark.skipif(SATURATES_HERE, reason="this CPU saturates: the test above is that case")
@pytest.mark.skipif(not CAN_MASK, reason="no cpuid_fault flag: CPUID cannot be masked here")
def test_the_same_as_a_cpu_without_vnni(
    exported: Path, calibrated: Calibrated, tmp_path: Path
) -> None:
    """The comparison above in a process that sees this CPU as x86-avx2 (`hack/cpumask/run`:
    ONNX Runtime then runs the saturating kernels for real), so that a machine with VNNI
    checks the artifact a CPU without it gets, and the refusal there."""
    code = (
        "import json, sys; from pathlib import Path; "
        "from tests.engines.test_int8_cpu import compare_kinds; "
        "from tests.engines.conftest import Calibrated; "
        "a = [Path(p) for p in sys.argv[1:]]; "
        "print(json.dumps(compare_kinds(a[0], Calibrated(a[1], a[2], a[3]), a[4])))"
    )
    args = [exported, calibrated.cal_bin, calibrated.qdq_model, calibrated.images, tmp_path]
    done = subprocess.run(
        [str(ROOT / "hack" / "cpumask" / "run"), "x86-avx2", "--", sys.executable, "-c", code,
         *map(str, args)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
        env=python_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["here"] == "x86-avx2" and found["other"] == "x86-vnni"
    _judge(found)


def test_int7_weights_stay_within_seven_bits_and_no_class_refuses_them(
    exported: Path, calibrated: Calibrated, tmp_path: Path
) -> None:
    """int7 (benchmarks/engines.py's candidate where the kernels saturate): int8 weights
    within [-64, 64], so two products of 255 x 64 fit a 16-bit lane; said in the model's
    metadata, and run on every class."""
    built = OnnxRuntimeBuilder().build(
        build_request(
            exported / "bpnet_model.onnx", tmp_path / "int7.onnx", precision="int8",
            calibration_cache=calibrated.cal_bin, int8_weights="int7",
        )
    )  # fmt: skip
    model = onnx.load(str(built.path))
    recorded = {p.key: p.value for p in model.metadata_props}
    assert recorded[hardware.METADATA_KEYS["weights"]] == "int7"
    kernels = [
        onnx.numpy_helper.to_array(i) for i in model.graph.initializer
        if i.data_type == onnx.TensorProto.INT8 and len(i.dims) == 4
    ]  # fmt: skip
    assert len(kernels) >= 30  # the convolutions' weights
    assert min(int(k.min()) for k in kernels) >= -64 and max(int(k.max()) for k in kernels) <= 64
    assert max(int(abs(k).max()) for k in kernels) == 64  # all seven bits used, not fewer
    for here in hardware.INT8_CLASSES:
        check_runs_here(Path(built.path), recorded, here)


def test_weights_of_no_kind_are_refused_with_the_kinds() -> None:
    from bodypose_exporter.engines.ort.args import OnnxRuntimeOptions, check

    with pytest.raises(UserError, match="int8 weights 'int4': choose one of int8, uint8, int7"):
        check(OnnxRuntimeOptions(int8_weights="int4"), "int8")
    assert set(WEIGHT_TYPES) == set(hardware.WEIGHT_KINDS)


@pytest.mark.parametrize(
    ("flags", "machine", "expected", "weights"),
    [
        ({"avx2", "fma"}, "x86_64", "x86-avx2", "int7"),
        ({"avx2", "avx512f", "avx512bw"}, "x86_64", "x86-avx512", "int7"),
        ({"avx2", "avx512bw", "avx512_vnni"}, "x86_64", "x86-vnni", "int8"),
        ({"avx2", "avx_vnni"}, "x86_64", "x86-vnni", "int8"),
        ({"avx512_vnni", "amx_tile", "amx_int8"}, "x86_64", "x86-amx", "int8"),
        ({"sse4_2"}, "x86_64", "x86", "int7"),
        ({"asimd", "asimddp"}, "aarch64", "arm64-dotprod", "int8"),
        ({"asimd"}, "aarch64", "arm64", "int8"),
    ],
)
def test_int8_class_and_weights_by_cpu_flags(
    flags: set[str], machine: str, expected: str, weights: str
) -> None:
    assert hardware.int8_instruction_set(flags, machine) == expected
    assert hardware.int8_weights(expected) == weights


@pytest.mark.parametrize(
    ("requested", "here", "refused"),
    [
        ("x86-vnni", "x86-vnni", False),  # the node's own class
        ("x86", "x86-vnni", False),  # the baseline: right on every x86 class
        ("x86", "x86-avx2", False),
        ("x86", "x86", False),
        ("arm64", "arm64-i8mm", False),
        ("x86-vnni", "x86-avx2", True),  # int8 weights would saturate here
        ("x86-avx2", "x86-vnni", True),  # a mislabelled pool, though uint8 would run
        ("x86-amx", "x86-vnni", True),
        ("arm64-i8mm", "arm64-dotprod", True),
        ("x86", "arm64", True),  # another architecture's baseline
        ("arm64", "x86-vnni", True),
    ],
)
def test_a_build_for_another_class_than_this_cpus_is_refused_except_the_baseline(
    requested: str, here: str, refused: bool
) -> None:
    if not refused:
        hardware.check_int8_class(requested, here)
        return
    with pytest.raises(hardware.Int8ClassMismatchError) as raised:
        hardware.check_int8_class(requested, here)
    message = str(raised.value)
    assert f"this node's CPU is {here}, not {requested}" in message
    assert "Node Feature Discovery labels disagree with this node's /proc/cpuinfo" in message
    assert raised.value.exit_code == 2 and raised.value.reason == "CpuClassMismatch"


def test_the_classes_a_build_can_be_asked_for_are_the_ones_a_cpu_can_have() -> None:
    x86 = {("avx2",), ("avx512bw",), ("avx512_vnni",), ("amx_int8",), ()}
    arm = {("i8mm",), ("asimddp",), ()}
    found = {hardware.int8_instruction_set(set(f), "x86_64") for f in x86} | {
        hardware.int8_instruction_set(set(f), "aarch64") for f in arm
    }
    assert found == set(hardware.INT8_CLASSES)
    assert {hardware.architecture_of(c) for c in hardware.INT8_CLASSES} == set(
        hardware.BASELINE_CLASSES
    )


def test_the_baseline_class_asked_for_is_built_with_its_weights_and_recorded(
    exported: Path, calibrated: Calibrated, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--int8_instruction_set x86` (what the operator asks of a pool of mixed CPUs) on this
    CPU, whatever its own class: int7 weights (inside the gates at this size, so no
    fallback), and the manifest and the model name x86."""
    from bodypose_exporter.cli.main import build_main

    baseline = hardware.architecture_of(HERE)
    engine = tmp_path / "bpnet_model.224.320.int8.engine"
    code = build_main(
        [
            "--onnx", str(exported / "bpnet_model.onnx"),
            "--reference_images", str(calibrated.images),
            "--engine_backend", "onnxruntime",
            "--engine_file", str(engine),
            "--data_type", "int8",
            "--cal_cache_file", str(calibrated.cal_bin),
            "--int8_instruction_set", baseline,
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["compatibility"]["instructionSet"] == baseline
    assert manifest["compatibility"]["weights"] == hardware.int8_weights(baseline)
    assert manifest["hardware"]["int8InstructionSet"] == HERE  # where it was built
    assert manifest["build"]["int8Weights"] == hardware.int8_weights(baseline)
    recorded = {p.key: p.value for p in onnx.load(str(engine.with_suffix(".onnx"))).metadata_props}
    assert recorded[hardware.METADATA_KEYS["instructionSet"]] == baseline


def test_int7_weights_outside_the_gates_are_built_again_as_uint8_and_recorded_so(
    exported: Path, calibrated: Calibrated, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The build step's fallback (`capabilities.FallsBackOnFailedGates`): a gate between
    what int7 and uint8 weights reach on the same reference makes the int7 artifact fail;
    the build then publishes the uint8 one, and every record says uint8 and why. A gate
    above both fails the build as before (exit 3)."""
    from bodypose_exporter.cli.main import build_main

    onnx_path, reference_npz = exported / "bpnet_model.onnx", exported / "reference.npz"
    reference = references.from_npz(reference_npz)
    peaks = {}
    for weights in ("int7", "uint8"):
        built = OnnxRuntimeBuilder().build(
            build_request(
                onnx_path, tmp_path / weights / "a.onnx", precision="int8",
                calibration_cache=calibrated.cal_bin, int8_instruction_set="x86",
                int8_weights=weights,
            )
        )  # fmt: skip
        peaks[weights] = _figures(Path(built.path), reference)["peakAgreement"]
    assert peaks["uint8"] > peaks["int7"], peaks  # 8 bits of each weight against 7
    between = round((peaks["int7"] + peaks["uint8"]) / 2, 4)

    def build(gate: float, out: Path) -> tuple[int, dict[str, Any], str]:
        engine = out / "bpnet_model.224.320.int8.engine"
        code = build_main(
            [
                "--onnx", str(onnx_path), "--reference", str(reference_npz),
                "--engine_backend", "onnxruntime", "--engine_file", str(engine),
                "--data_type", "int8", "--cal_cache_file", str(calibrated.cal_bin),
                "--int8_instruction_set", "x86", "--min_peak_agreement", str(gate),
            ]
        )  # fmt: skip
        found = sorted(out.glob("*manifest.json"))
        manifest = json.loads(found[0].read_text()) if found else {}
        return code, manifest, capsys.readouterr().err

    code, manifest, err = build(between, tmp_path / "between")
    assert code == 0, err
    assert manifest["build"]["int8Weights"] == "uint8"
    assert manifest["compatibility"] == {**manifest["compatibility"], "weights": "uint8"}
    assert manifest["verification"]["passed"] is True
    (warning,) = [w for w in manifest["warnings"] if "int7 weights" in w]
    assert "outside its gates; built again with uint8 weights" in warning
    assert f"peakAgreement {peaks['int7']:.4g} < gate {between:g}" in warning, warning
    artifact = tmp_path / "between" / "bpnet_model.224.320.int8.onnx"
    recorded = {p.key: p.value for p in onnx.load(str(artifact)).metadata_props}
    assert recorded[hardware.METADATA_KEYS["weights"]] == "uint8"

    code, manifest, err = build(min(1.0, peaks["uint8"] + 0.01), tmp_path / "above")
    assert code == 3, err
    assert "peakAgreement" in err
