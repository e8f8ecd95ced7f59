"""The FP16 model an fp16 export publishes: counted from its own graph, and gated like an engine.

`convert/fp16.py` writes it; `stages/export.py` checks it against the FP32 model
on reference.npz with the fp16 gates of `verification.agreement_gates` (cosine, peak
agreement, max |diff|), on the evaluation images when the export has them, and
fails the export with the figures when it disagrees.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from bodypose_exporter.cli.main import export_main
from bodypose_exporter.convert.fidelity import read_verification_reference
from bodypose_exporter.convert.fp16 import write_fp16_model
from bodypose_exporter.stages.sample import TrainedSample, write_trained_sample
from bodypose_exporter.synthetic.people import SetSpec
from tests.exporter.conftest import leftovers

KEY = "nvidia_tlt"
HEIGHT, WIDTH = SetSpec().height, SetSpec().width


def fp16_nodes_by_dataflow(model: onnx.ModelProto) -> int:
    """Nodes computing in FP16, found by following FP16 tensors from where they start (Casts
    to float16, float16 initializers) through the graph, without onnx's type inference."""
    fp16 = {i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT16}
    count = 0
    for node in model.graph.node:  # ONNX graphs are topologically sorted
        if node.op_type == "Cast":
            to = next(a.i for a in node.attribute if a.name == "to")
            if to == onnx.TensorProto.FLOAT16:
                fp16.update(node.output)
            continue
        if any(name in fp16 for name in node.input):
            count += 1
            fp16.update(node.output)
    return count


def test_fp16_nodes_is_the_count_of_fp16_nodes_in_the_converted_graph(
    exported_sample: Path, tmp_path: Path
) -> None:
    """A node the converter keeps in FP32 by its op type (here a Relu written as Max(x, 0),
    as TensorFlow's maximum exports, which onnxconverter-common blocks) is no FP16 node:
    the old counter subtracted only the nodes its own rules kept and said 73 of 73."""
    model = onnx.load(str(exported_sample / "bpnet_model.onnx"))
    relu = next(i for i, n in enumerate(model.graph.node) if n.op_type == "Relu")
    old = model.graph.node[relu]
    model.graph.initializer.append(numpy_helper.from_array(np.zeros((), np.float32), "zero"))
    model.graph.node.remove(old)
    model.graph.node.insert(relu, helper.make_node("Max", [old.input[0], "zero"], list(old.output),
                                                   name=old.name))  # fmt: skip
    source = tmp_path / "with_max.onnx"
    onnx.save(model, str(source))
    inputs, _ = read_verification_reference(exported_sample / "reference.npz")

    written = write_fp16_model(source, tmp_path / "out.fp16.onnx", inputs.astype(np.float32))

    converted = onnx.load(str(written.path))
    counted = fp16_nodes_by_dataflow(converted)
    assert counted == len(model.graph.node) - 1  # every node but the Max
    assert written.as_dict()["fp16Nodes"] == counted
    assert written.nodes == len(model.graph.node)
    assert "Max" in written.kept_fp32[old.name]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> TrainedSample:
    return write_trained_sample(tmp_path_factory.mktemp("trained"), KEY, images=8)


def _export(sample: TrainedSample, out: Path) -> list[str]:
    return [
        "-m", str(sample.model), "-k", KEY, "-d", f"{HEIGHT},{WIDTH},3",
        "-o", str(out / "bpnet_model.etlt"), "--data_type", "fp16",
        "--eval_annotations", str(sample.annotations), "--eval_images", str(sample.images),
    ]  # fmt: skip


def test_the_fp16_model_is_gated_on_the_evaluation_images(
    sample: TrainedSample, tmp_path: Path
) -> None:
    assert export_main(_export(sample, tmp_path)) == 0
    manifest: dict[str, Any] = json.loads((tmp_path / "manifest.json").read_text())
    verification = manifest["fp16"]["verification"]
    assert verification["passed"] and verification["precision"] == "fp16"
    assert verification["reference"].startswith("8 evaluation images")
    assert verification["gates"] == {"maxAbsDiff": 0.05, "cosine": 0.999, "peakAgreement": 0.95}
    figures = verification["figures"]
    assert figures["cosine"] >= 0.999 and figures["peakAgreement"] >= 0.95
    assert figures["peakCandidates"] > 0  # people's keypoints, not noise
    # reference.npz is those images: every fp16 build is verified on them too.
    inputs, _ = read_verification_reference(tmp_path / "reference.npz")
    assert inputs.shape == (8, HEIGHT, WIDTH, 3)


def test_an_fp16_model_with_a_broken_weight_fails_the_export_with_its_figures(
    sample: TrainedSample,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """One conv weight of the converted graph scaled, as a faulty conversion would leave it."""
    from onnxconverter_common import float16

    convert = float16.convert_float_to_float16

    def broken(model: onnx.ModelProto, **kwargs: Any) -> onnx.ModelProto:
        converted = convert(model, **kwargs)
        conv = [n for n in converted.graph.node if n.op_type == "Conv"][len(converted.graph.node)
                                                                        // 8]  # fmt: skip
        weight = next(i for i in converted.graph.initializer if i.name == conv.input[1])
        scaled = numpy_helper.to_array(weight) * np.float16(3.0)
        weight.CopyFrom(numpy_helper.from_array(scaled, weight.name))
        return converted

    monkeypatch.setattr(float16, "convert_float_to_float16", broken)
    capsys.readouterr()
    code = export_main(_export(sample, tmp_path))
    err = capsys.readouterr().err
    assert code == 3, err
    assert "the FP16 model bpnet_model.fp16.onnx disagrees with the FP32 model on 8 evaluation " \
           "images" in err  # fmt: skip
    assert "< gate 0.999 (--min_cosine)" in err
    for figure in ("cosine ", "peakAgreement ", "maxAbsDiff "):
        assert figure in err
    assert leftovers(tmp_path) == []  # nothing published
