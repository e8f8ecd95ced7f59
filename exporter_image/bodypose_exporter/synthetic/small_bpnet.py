"""A narrow BodyPoseNet: TAO's shape and names, few filters, so it trains in minutes on a CPU.

The shape is `model.bpnet`'s (TAO's `BpNetLiteModel`, NVIDIA/tao_tensorflow1_backend
`nvidia_tao_tf1/cv/bpnet/models/bpnet_lite_model.py`): a VGG-style backbone
of 3x3 conv (no bias) -> BN -> ReLU blocks whose first convs of blocks 2-4
stride by 2 (output stride 8), `block_6a`, `channel_reduction_conv`, a first
stage of 3x3 convs with a heatmap and a PAF branch, then refinement stages on
`[features, heatmap, PAF]`; the outputs are every stage's heatmaps then every
stage's PAFs, the last named `heatmap_out` and `paf_out`. So the exporter
reads it as it reads a TAO `.tlt` (`model.bpnet.stage_count`,
`model.deploy.build_deploy_model`) and the ONNX tensor names are TAO's.

What differs, for speed only: tens of filters instead of hundreds, one or two
convs per block, 3x3 refinement convs instead of 7x7, two stages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bodypose_exporter.evaluation.skeleton import HEATMAP_CHANNELS, PAF_CHANNELS
from bodypose_exporter.model.keras_backend import keras


@dataclass(frozen=True)
class Widths:
    """Filters per backbone block (convs per block), the stages' width, the stage count."""

    blocks: tuple[tuple[int, int, int], ...] = ((1, 1, 16), (2, 2, 32), (3, 2, 48), (4, 2, 64))
    features: int = 64
    stage: int = 64
    stages: int = 2


def _conv(x: Any, filters: int, kernel: int, name: str, activation: str | None) -> Any:
    x = keras.layers.Conv2D(
        filters, (kernel, kernel), padding="same", kernel_initializer="he_normal", name=name
    )(x)
    if activation:
        x = keras.layers.Activation(activation, name=f"{name}/{activation}")(x)
    return x


def _backbone(x: Any, widths: Widths) -> Any:
    for index, repeat, filters in widths.blocks:
        for i in range(repeat):
            prefix = f"block_{index}{chr(ord('a') + i)}_"
            stride = 2 if index > 1 and i == 0 else 1
            x = keras.layers.Conv2D(
                filters,
                (3, 3),
                strides=(stride, stride),
                padding="same",
                use_bias=False,
                kernel_initializer="he_normal",
                name=f"{prefix}conv_1",
            )(x)
            x = keras.layers.BatchNormalization(axis=-1, name=f"{prefix}bn_1")(x)
            x = keras.layers.Activation("relu", name=f"{prefix}relu")(x)
    x = keras.layers.Conv2D(
        widths.features, (3, 3), padding="same", use_bias=False, name="block_6a_conv_1"
    )(x)
    x = keras.layers.BatchNormalization(axis=-1, name="block_6a_bn_1")(x)
    return keras.layers.Activation("relu", name="block_6a_relu")(x)


def _branches(x: Any, scope: str, widths: Widths, final: bool) -> tuple[Any, Any]:
    paf = _conv(x, widths.stage, 1, f"{scope}paf/conv_last", "relu")
    cmap = _conv(x, widths.stage, 1, f"{scope}cmap/conv_last", "relu")
    paf_name = "paf_out" if final else f"{scope}paf_branch/out"
    cmap_name = "heatmap_out" if final else f"{scope}heat_branch/out"
    return (
        _conv(paf, PAF_CHANNELS, 1, paf_name, None),
        _conv(cmap, HEATMAP_CHANNELS, 1, cmap_name, None),
    )


def build_small_bpnet(widths: Widths | None = None) -> keras.Model:
    """The training-time model, size-agnostic input `input_1` as TAO's."""
    widths = widths or Widths()
    inputs = keras.Input(shape=(None, None, 3), name="input_1")
    feat = _conv(_backbone(inputs, widths), widths.features, 3, "channel_reduction_conv", "relu")
    x = feat
    for i in range(2):
        x = _conv(x, widths.stage, 3, f"stage1/conv{i + 1}", "relu")
    paf, cmap = _branches(x, "stage1/", widths, final=widths.stages == 1)
    pafs, cmaps = [paf], [cmap]
    for t in range(2, widths.stages + 1):
        x = keras.layers.Concatenate(axis=-1, name=f"stage{t}/concat")([feat, cmaps[-1], pafs[-1]])
        for i in range(3):
            x = _conv(x, widths.stage, 3, f"stage{t}/conv{i + 1}", "relu")
        paf, cmap = _branches(x, f"stage{t}/", widths, final=t == widths.stages)
        pafs.append(paf)
        cmaps.append(cmap)
    return keras.Model(inputs=inputs, outputs=cmaps + pafs, name="bpnet")
