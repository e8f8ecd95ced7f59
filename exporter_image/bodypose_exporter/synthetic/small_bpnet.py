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
convs per block, 3x3 refinement convs instead of 7x7, two stages. The blocks,
convs and branches are `model.bpnet`'s own, given these widths.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bodypose_exporter.model.bpnet import backbone, branch_outputs, conv
from bodypose_exporter.model.keras_backend import keras


@dataclass(frozen=True)
class Widths:
    """Filters per backbone block (convs per block), the stages' width, the stage count."""

    blocks: tuple[tuple[int, int, int], ...] = ((1, 1, 16), (2, 2, 32), (3, 2, 48), (4, 2, 64))
    features: int = 64
    stage: int = 64
    stages: int = 2


def _backbone(x: Any, widths: Widths) -> Any:
    # The first conv of blocks 2-4 strides by 2, as in TAO's: output stride 8.
    blocks = tuple((i, repeat, filters, 2 if i > 1 else 1) for i, repeat, filters in widths.blocks)
    x = backbone(x, blocks)
    # block_6a with Keras' default kernel initializer, as the cached sample was trained.
    x = keras.layers.Conv2D(
        widths.features, (3, 3), padding="same", use_bias=False, name="block_6a_conv_1"
    )(x)
    x = keras.layers.BatchNormalization(axis=-1, name="block_6a_bn_1")(x)
    return keras.layers.Activation("relu", name="block_6a_relu")(x)


def _branches(x: Any, scope: str, widths: Widths, final: bool) -> tuple[Any, Any]:
    return branch_outputs(x, widths.stage, scope, "conv_last", final)


def build_small_bpnet(widths: Widths | None = None) -> keras.Model:
    """The training-time model, size-agnostic input `input_1` as TAO's."""
    widths = widths or Widths()
    inputs = keras.Input(shape=(None, None, 3), name="input_1")
    feat = conv(_backbone(inputs, widths), widths.features, 3, "channel_reduction_conv", "relu")
    x = feat
    for i in range(2):
        x = conv(x, widths.stage, 3, f"stage1/conv{i + 1}", "relu")
    paf, cmap = _branches(x, "stage1/", widths, final=widths.stages == 1)
    pafs, cmaps = [paf], [cmap]
    for t in range(2, widths.stages + 1):
        x = keras.layers.Concatenate(axis=-1, name=f"stage{t}/concat")([feat, cmaps[-1], pafs[-1]])
        for i in range(3):
            x = conv(x, widths.stage, 3, f"stage{t}/conv{i + 1}", "relu")
        paf, cmap = _branches(x, f"stage{t}/", widths, final=t == widths.stages)
        pafs.append(paf)
        cmaps.append(cmap)
    return keras.Model(inputs=inputs, outputs=cmaps + pafs, name="bpnet")
