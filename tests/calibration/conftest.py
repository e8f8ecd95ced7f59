"""Fixtures for calibration tests: a small BpNet-shaped ONNX model and image directories.

The model is built with onnx.helper (no TensorFlow, so tests stay fast) in the
shape tf2onnx gives BpNet: NHWC input `input_1:0`, a Transpose to NCHW,
Conv+Relu blocks (one strided, one MaxPool), a Concat as in BpNet's
refinement stages, two heads (19-channel heatmap, 38-channel PAF at stride
4 here) and Transposes back to NHWC named `heatmap_out/BiasAdd:0` and
`paf_out/BiasAdd:0`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

HEIGHT, WIDTH = 64, 96
INPUT = "input_1:0"


def _conv(
    nodes: list[onnx.NodeProto],
    inits: list[onnx.TensorProto],
    rng: np.random.Generator,
    name: str,
    x: str,
    cin: int,
    cout: int,
    k: int = 3,
    stride: int = 1,
    relu: bool = True,
) -> str:
    w = rng.normal(0, np.sqrt(2.0 / (cin * k * k)), (cout, cin, k, k)).astype(np.float32)
    b = rng.normal(0, 0.1, cout).astype(np.float32)
    inits += [numpy_helper.from_array(w, f"{name}/W"), numpy_helper.from_array(b, f"{name}/B")]
    out = f"{name}/BiasAdd:0"
    pad = k // 2
    nodes.append(
        helper.make_node(
            "Conv",
            [x, f"{name}/W", f"{name}/B"],
            [out],
            name=name,
            kernel_shape=[k, k],
            strides=[stride, stride],
            pads=[pad] * 4,
        )
    )
    if not relu:
        return out
    nodes.append(helper.make_node("Relu", [out], [f"{name}/Relu:0"], name=f"{name}/relu"))
    return f"{name}/Relu:0"


def build_small_bpnet(path: Path, height: int = HEIGHT, width: int = WIDTH, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    nodes.append(helper.make_node("Transpose", [INPUT], ["nchw:0"], perm=[0, 3, 1, 2]))
    x = _conv(nodes, inits, rng, "block_1a_conv_1", "nchw:0", 3, 8)
    x = _conv(nodes, inits, rng, "block_2a_conv_1", x, 8, 16, stride=2)
    nodes.append(helper.make_node("MaxPool", [x], ["pool:0"], kernel_shape=[2, 2], strides=[2, 2]))
    feat = _conv(nodes, inits, rng, "channel_reduction_conv", "pool:0", 16, 16)
    heat1 = _conv(nodes, inits, rng, "stage1/heat", feat, 16, 19, k=1, relu=False)
    paf1 = _conv(nodes, inits, rng, "stage1/paf", feat, 16, 38, k=1, relu=False)
    nodes.append(helper.make_node("Concat", [feat, heat1, paf1], ["stage2/concat:0"], axis=1))
    x = _conv(nodes, inits, rng, "stage2/conv1", "stage2/concat:0", 16 + 19 + 38, 16)
    heat = _conv(nodes, inits, rng, "heatmap_out_conv", x, 16, 19, k=1, relu=False)
    paf = _conv(nodes, inits, rng, "paf_out_conv", x, 16, 38, k=1, relu=False)
    nodes.append(helper.make_node("Transpose", [paf], ["paf_out/BiasAdd:0"], perm=[0, 2, 3, 1]))
    nodes.append(
        helper.make_node("Transpose", [heat], ["heatmap_out/BiasAdd:0"], perm=[0, 2, 3, 1])
    )
    h4, w4 = height // 4, width // 4
    graph = helper.make_graph(
        nodes,
        "small_bpnet",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["N", height, width, 3])],
        [
            helper.make_tensor_value_info(
                "paf_out/BiasAdd:0", TensorProto.FLOAT, ["N", h4, w4, 38]
            ),
            helper.make_tensor_value_info(
                "heatmap_out/BiasAdd:0", TensorProto.FLOAT, ["N", h4, w4, 19]
            ),
        ],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="session")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_small_bpnet(tmp_path_factory.mktemp("model") / "small_bpnet.onnx")


def picture(height: int, width: int, seed: int) -> np.ndarray:
    """A BGR uint8 picture with structure (gradients, blobs), not just noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(30, 220, 3)
    img = np.stack(
        [
            base[c] + 40 * np.sin(xx / rng.uniform(5, 40) + yy / rng.uniform(5, 40))
            for c in range(3)
        ],
        axis=-1,
    )
    for _ in range(3):
        center = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        cv2.circle(img, center, max(1, min(height, width) // 6), color, -1)
    return np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)


WriteImages = Callable[..., list[Path]]


@pytest.fixture
def write_images() -> WriteImages:
    """write(directory, count, size=(h, w), suffix=".jpg", start=0) -> the files written."""

    def write(
        directory: Path,
        count: int,
        size: tuple[int, int] = (48, 80),
        suffix: str = ".jpg",
        start: int = 0,
    ) -> list[Path]:
        directory.mkdir(parents=True, exist_ok=True)
        paths = []
        for i in range(start, start + count):
            path = directory / f"img_{i:04d}{suffix}"
            assert cv2.imwrite(str(path), picture(size[0], size[1], seed=i))
            paths.append(path)
        return paths

    return write
