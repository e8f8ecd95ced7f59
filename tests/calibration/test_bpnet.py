"""The one slow calibration test: TAO's BpNet, converted by our tf2onnx path, at 64x96.

It checks what the small hand-built model cannot: the tensors of the real
graph (tf2onnx folds BatchNorm into the Conv, so the graph is Transpose, Conv,
Relu and Concat) all get a scale, keyed by the names TensorRT's ONNX parser
will give them, and the QDQ model follows the FP32 one on held-back images.
"""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from bodypose_exporter.calibration import calibration_cache as cal_cache
from bodypose_exporter.calibration.tensors import select_tensors
from bodypose_exporter.stages.local_calibration import CalibrationOptions, run_calibration
from tests.calibration.conftest import WriteImages
from tests.conftest import FIGURES


@pytest.mark.slow
def test_bpnet_calibration_covers_every_activation(
    tmp_path: Path, write_images: WriteImages
) -> None:
    from bodypose_exporter.convert.keras_to_onnx import keras_to_onnx
    from bodypose_exporter.model.bpnet import build_bpnet
    from bodypose_exporter.model.deploy import build_deploy_model

    onnx_path = tmp_path / "bpnet.onnx"
    keras_to_onnx(build_deploy_model(build_bpnet(seed=0), 64, 96), onnx_path)
    model = onnx.load(str(onnx_path))
    tensors = select_tensors(model)
    ops = {node.op_type for node in model.graph.node}
    activations = [o for node in model.graph.node for o in node.output]
    assert ops == {"Transpose", "Conv", "Relu", "Concat"}
    assert list(tensors.names) == ["input_1:0", *activations]
    # Every Conv followed by a Relu shares the Relu's range; Transposes share their input's.
    relu_inputs = {n.input[0] for n in model.graph.node if n.op_type == "Relu"}
    assert relu_inputs <= set(tensors.alias)

    images = tmp_path / "images"
    write_images(images, 12, size=(240, 320))
    write_images(images, 4, size=(480, 360), suffix=".png", start=100)
    options = CalibrationOptions(
        cache_file=tmp_path / "cal.bin",
        batches=3,
        batch_size=4,
        input_hw=(64, 96),
        image_dir=images,
        held_back=4,
        progress=False,
    )
    result = run_calibration(onnx_path, options, tmp_path / "out")
    cache = cal_cache.read(options.cache_file)
    assert list(cache.scales) == list(tensors.names)
    assert "heatmap_out/BiasAdd:0" in cache.scales and "paf_out/BiasAdd:0" in cache.scales
    assert all(scale > 0 for scale in cache.scales.values())
    agreement = result.agreement
    assert agreement is not None
    assert agreement.heatmap_cosine_mean > 0.98 and agreement.paf_cosine_mean > 0.98
    FIGURES.append(f"calibration, BpNet 64x96 (untrained weights): {agreement.summary()}")
