"""Full exports of the sample model: fidelity at TAO's three resolutions, the files and names."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from bodypose_exporter.codec.registry import available_codecs
from bodypose_exporter.codec.tao_files import read_etlt
from bodypose_exporter.convert.fidelity import read_verification_reference
from bodypose_exporter.errors import FidelityError
from bodypose_exporter.manifest import sha256_of
from bodypose_exporter.stages.export import ExportRequest, InputDims, run_export
from tests.conftest import FIGURES, SAMPLE_KEY
from tests.exporter.conftest import RunCli, leftovers


def _export_dir(sample_dir: Path, tmp_path: Path) -> Path:
    shutil.copy(sample_dir / "bpnet_sample.tlt", tmp_path / "bpnet_model.tlt")
    return tmp_path


@pytest.mark.parametrize(("height", "width"), [(224, 320), (288, 384), (320, 448)])
def test_export_fidelity_and_outputs(
    run_cli: RunCli, sample_dir: Path, tmp_path: Path, height: int, width: int
) -> None:
    work = _export_dir(sample_dir, tmp_path)
    r = run_cli("-m", str(work / "bpnet_model.tlt"), "-k", SAMPLE_KEY, "-d", f"{height},{width},3")
    assert r.code == 0, r.err

    # Default output: <input>.etlt, with the .onnx and manifest beside it.
    etlt, onnx_path = work / "bpnet_model.etlt", work / "bpnet_model.onnx"
    manifest = json.loads((work / "manifest.json").read_text())
    assert {a["kind"]: a["path"] for a in manifest["artifacts"]} == {
        "etlt": str(etlt),
        "onnx": str(onnx_path),
        "reference": str(work / "reference.npz"),
    }
    for artifact in manifest["artifacts"]:
        assert artifact["sha256"] == sha256_of(Path(artifact["path"]))
        assert artifact["bytes"] == Path(artifact["path"]).stat().st_size
    assert manifest["inputDims"] == [height, width, 3]
    assert manifest["codec"]["etlt"] == "open-pbkdf2-aes256ctr-v1"
    assert set(manifest["timingsSeconds"]) >= {"fetch", "decrypt", "convert", "verify", "encrypt"}
    assert "tf2onnx" in manifest["versions"] and "onnxruntime" in manifest["versions"]

    # The reference the build stage verifies engines against: inputs and FP32 outputs.
    ref_in, ref_out = read_verification_reference(work / "reference.npz")
    assert ref_in.shape[1:] == (height, width, 3)
    assert list(ref_out) == ["paf_out/BiasAdd:0", "heatmap_out/BiasAdd:0"]
    worst = manifest["fidelity"]["worst"]
    assert worst < 1e-4
    FIGURES.append(
        f"fidelity {height}x{width}: max |ONNX Runtime - Keras| = {worst:.3g} (gate 1e-4)"
    )

    # The .etlt decrypts to exactly the plain .onnx.
    back = read_etlt(etlt, SAMPLE_KEY, available_codecs(), tmp_path / "back.onnx")
    assert back.path.read_bytes() == onnx_path.read_bytes()

    # TAO's tensor names, NHWC input, stride-8 outputs, and a dynamic batch.
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert (inp.name, inp.shape) == ("input_1:0", ["N", height, width, 3])
    outs = {o.name: o.shape for o in session.get_outputs()}
    assert outs == {
        "paf_out/BiasAdd:0": ["N", height // 8, width // 8, 38],
        "heatmap_out/BiasAdd:0": ["N", height // 8, width // 8, 19],
    }
    batch = np.zeros((3, height, width, 3), np.float32)
    assert session.run(None, {"input_1:0": batch})[0].shape[0] == 3
    np.testing.assert_allclose(
        session.run(None, {"input_1:0": ref_in})[1], ref_out["heatmap_out/BiasAdd:0"], atol=1e-5
    )
    assert str(etlt) in r.out


def test_sdk_compatible_model_upsamples_pafs_for_deepstream(
    run_cli: RunCli, sample_dir: Path, exported_sample: Path, tmp_path: Path
) -> None:
    # The plain export to compare with is the session's (the same sample, size and
    # precision; the command line's plain export is test_export_fidelity_and_outputs').
    work = _export_dir(sample_dir, tmp_path)
    sdk = work / "sdk" / "m.etlt"
    model = str(work / "bpnet_model.tlt")
    r = run_cli(
        "-m", model, "-k", SAMPLE_KEY, "-d", "224,320,3", "-o", str(sdk), "--sdk_compatible_model"
    )
    assert r.code == 0, r.err
    s_plain = ort.InferenceSession(str(exported_sample / "bpnet_model.onnx"))
    s_sdk = ort.InferenceSession(str(sdk.with_suffix(".onnx")))
    assert [o.name for o in s_sdk.get_outputs()] == [
        "conv2d_transpose_1/BiasAdd:0",
        "heatmap_out/BiasAdd:0",
    ]
    x = np.random.default_rng(1).uniform(-0.5, 0.5, (1, 224, 320, 3)).astype(np.float32)
    paf, heat = s_plain.run(["paf_out/BiasAdd:0", "heatmap_out/BiasAdd:0"], {"input_1:0": x})
    paf_up, heat_sdk = s_sdk.run(None, {"input_1:0": x})
    # DeepStream reads PAFs at stride 2: nearest-neighbour x4 of the stride-8 map.
    assert paf_up.shape == (1, 112, 160, 38)
    np.testing.assert_allclose(paf_up, paf.repeat(4, axis=1).repeat(4, axis=2), atol=1e-5)
    np.testing.assert_allclose(heat_sdk, heat, atol=1e-5)
    assert json.loads((sdk.parent / "manifest.json").read_text())["sdkCompatible"] is True


def test_failure_after_conversion_leaves_nothing(sample_dir: Path, tmp_path: Path) -> None:
    work = _export_dir(sample_dir, tmp_path)
    request = ExportRequest(
        model=str(work / "bpnet_model.tlt"),
        key=SAMPLE_KEY,
        output=str(work / "bpnet_model.etlt"),
        dims=InputDims(224, 320, 3),
        tolerance=1e-12,  # no float32 conversion meets this: the check must fail
    )
    with pytest.raises(FidelityError, match="does not reproduce the Keras model"):
        run_export(request)
    assert leftovers(work) == []


def test_the_onnx_model_is_checked_by_onnx_checker_before_it_is_run(tmp_path: Path) -> None:
    """The export's first check of a converted graph is `onnx.checker` (full check): a graph
    it refuses is never handed to ONNX Runtime or compared with Keras."""
    from onnx import TensorProto, helper

    from bodypose_exporter.convert.fidelity import compare_with_keras, reference_inputs

    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        # Relu reads a value nothing produces: not a valid ONNX graph.
        [helper.make_node("Relu", ["nowhere"], ["heatmap_out/BiasAdd:0"])],
        "broken",
        [value("input_1:0", TensorProto.FLOAT, [None, 8, 8, 3])],
        [value("heatmap_out/BiasAdd:0", TensorProto.FLOAT, [None, 8, 8, 3])],
    )
    path = tmp_path / "broken.onnx"
    onnx.save(helper.make_model(graph), str(path))
    keras_never_called = None  # calling it would raise TypeError, not the checker's error
    with pytest.raises(onnx.checker.ValidationError, match="nowhere"):
        compare_with_keras(keras_never_called, path, reference_inputs(8, 8))


def test_experiment_spec_normalization_lands_in_manifest(
    run_cli: RunCli, sample_dir: Path, tmp_path: Path
) -> None:
    work = _export_dir(sample_dir, tmp_path)
    spec = work / "spec.yaml"
    spec.write_text(
        "dataloader:\n  normalization_params:\n"
        "    image_scale: [256.0, 256.0, 256.0]\n    image_offset: [0.5, 0.5, 0.5]\n"
    )
    r = run_cli(
        "-m", str(work / "bpnet_model.tlt"), "-k", SAMPLE_KEY, "-d", "224,320,3", "-e", str(spec)
    )
    assert r.code == 0, r.err
    manifest = json.loads((work / "manifest.json").read_text())
    assert manifest["preprocessing"]["imageScale"] == [256.0, 256.0, 256.0]
    assert manifest["inputs"]["experimentSpec"] == str(spec)
