"""BodyPoseNet as TAO builds it by default, rebuilt in Keras 2 (tf_keras).

Followed: NVIDIA/tao_tensorflow1_backend
`nvidia_tao_tf1/cv/bpnet/models/bpnet_lite_model.py` (the class TAO's default
experiment spec names, `BpNetLiteModel`), its VGG template
`nvidia_tao_tf1/cv/bpnet/models/templates/vgg.py` and `CNNBlock` in
`nvidia_tao_tf1/core/templates/utils.py`, and the default spec
`nvidia_tao_tf1/cv/bpnet/experiment_specs/experiment_spec.yaml`
(VGG19 backbone without bias, 3 stages, 19 heatmap and 38 PAF channels,
channels_last).

The network:

- backbone: TAO's "modified VGG19" with batch norm and no pooling: blocks of
  3x3 conv (no bias) -> BN -> ReLU with 2, 2, 4, 2 convolutions of 64, 128,
  256, 512 filters, the first conv of blocks 2-4 strided by 2 (so stride 8),
  then one 256-filter block ("block 6");
- a 3x3 128-filter `channel_reduction_conv`;
- stage 1: three 3x3 128-filter convs, then per branch a 1x1 512-filter conv
  and a 1x1 output conv (PAF: 38, heatmap: 19);
- stages 2..N: concatenate [features, previous heatmap, previous PAF], five
  7x7 128-filter convs, per branch a 1x1 128-filter conv and the 1x1 output;
  the last stage's outputs are named `heatmap_out` and `paf_out`.

The training model's outputs are every stage's heatmaps then every stage's
PAFs, as in TAO; export keeps the last stage of each.

Choices where the published code leaves a detail open:

- Input: `input_1`, shape (None, None, 3), as TAO's `Input(shape=(None, None, 3),
  name='input_1')`; the export fixes height and width.
- Layer names follow TAO's naming scheme (`block_1a_conv_1`, `block_1a_bn_1`,
  `block_1a_relu`, `stage2/conv1`, `stage2/conv1/relu` ...) so that ONNX
  tensor names, and therefore calibration-cache keys, read like TAO's.
- The `Concatenate` layers are named `stage{t}/concat`: TAO leaves them to
  Keras' automatic names, which depend on how many models were built before.
- Weights for the sample model: TAO's `random_normal(stddev=0.01)` initializer
  makes a 20-layer stack's activations vanish, so the sample uses He-normal
  kernels with seeded, non-trivial BN statistics instead. Only the sample's
  weights depend on this; a real .tlt brings its own.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bodypose_exporter.model.keras_backend import keras

HEATMAP_CHANNELS = 19
PAF_CHANNELS = 38
DEFAULT_STAGES = 3
STRIDE = 8

# (block index, number of convs, filters, stride of the first conv)
BACKBONE_BLOCKS = ((1, 2, 64, 1), (2, 2, 128, 2), (3, 4, 256, 2), (4, 2, 512, 2), (6, 1, 256, 1))


def conv(
    x: Any, filters: int, kernel: int, name: str, activation: str | None, use_bias: bool = True
) -> Any:
    x = keras.layers.Conv2D(
        filters,
        (kernel, kernel),
        padding="same",
        use_bias=use_bias,
        kernel_initializer=keras.initializers.HeNormal(),
        name=name,
    )(x)
    if activation:
        x = keras.layers.Activation(activation, name=f"{name}/{activation}")(x)
    return x


def backbone(x: Any, blocks: tuple[tuple[int, int, int, int], ...] = BACKBONE_BLOCKS) -> Any:
    """TAO's VGG blocks, 3x3 conv (no bias) -> BN -> ReLU, named as TAO names them; also
    the narrow sample's (`synthetic.small_bpnet`), with its own `blocks`."""
    for index, repeat, filters, first_stride in blocks:
        for i in range(repeat):
            prefix = f"block_{index}{chr(ord('a') + i)}_"
            stride = first_stride if i == 0 else 1
            x = keras.layers.Conv2D(
                filters,
                (3, 3),
                strides=(stride, stride),
                padding="same",
                use_bias=False,
                kernel_initializer=keras.initializers.HeNormal(),
                name=f"{prefix}conv_1",
            )(x)
            x = keras.layers.BatchNormalization(axis=-1, name=f"{prefix}bn_1")(x)
            x = keras.layers.Activation("relu", name=f"{prefix}relu")(x)
    return x


def branch_outputs(
    x: Any, hidden: int, scope: str, hidden_conv: str, final: bool
) -> tuple[Any, Any]:
    """A stage's PAF and heatmap branches: a 1x1 `hidden`-filter conv named
    `{scope}paf/{hidden_conv}` (and `cmap/`), then the 1x1 output conv."""
    paf = conv(x, hidden, 1, f"{scope}paf/{hidden_conv}", "relu")
    cmap = conv(x, hidden, 1, f"{scope}cmap/{hidden_conv}", "relu")
    paf_name = "paf_out" if final else f"{scope}paf_branch/out"
    cmap_name = "heatmap_out" if final else f"{scope}heat_branch/out"
    return conv(paf, PAF_CHANNELS, 1, paf_name, None), conv(
        cmap, HEATMAP_CHANNELS, 1, cmap_name, None
    )


def build_bpnet(
    height: int | None = None,
    width: int | None = None,
    stages: int = DEFAULT_STAGES,
    seed: int | None = 0,
) -> keras.Model:
    """The training-time BpNet: outputs are all stages' heatmaps, then all stages' PAFs.

    `height`/`width` None gives TAO's size-agnostic input (what a .tlt holds).
    `seed` makes the weights reproducible (the sample model); BN statistics are
    randomised too so that inference-mode BN is not an identity.
    """
    if stages < 1:
        raise ValueError(f"stages must be at least 1, got {stages}")
    if seed is not None:
        keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(height, width, 3), name="input_1")
    feat = conv(backbone(inputs), 128, 3, "channel_reduction_conv", "relu")

    x = feat
    for i in range(3):
        x = conv(x, 128, 3, f"stage1/conv{i + 1}", "relu")
    paf, cmap = branch_outputs(x, 512, "stage1/", "conv4", final=stages == 1)
    pafs, cmaps = [paf], [cmap]
    for t in range(2, stages + 1):
        x = keras.layers.Concatenate(axis=-1, name=f"stage{t}/concat")([feat, cmaps[-1], pafs[-1]])
        for i in range(5):
            x = conv(x, 128, 7, f"stage{t}/conv{i + 1}", "relu")
        paf, cmap = branch_outputs(x, 128, f"stage{t}/", "conv6", final=t == stages)
        pafs.append(paf)
        cmaps.append(cmap)
    model = keras.Model(inputs=inputs, outputs=cmaps + pafs, name="bpnet")
    if seed is not None:
        _randomise_batchnorm(model, np.random.default_rng(seed))
    return model


def _randomise_batchnorm(model: keras.Model, rng: np.random.Generator) -> None:
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.get_weights()[0].shape[0]
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, n).astype(np.float32),
                    rng.normal(0.0, 0.1, n).astype(np.float32),
                    rng.normal(0.0, 0.5, n).astype(np.float32),
                    rng.uniform(0.5, 2.0, n).astype(np.float32),
                ]
            )


def stage_count(model: keras.Model) -> int:
    """Stages of a training-time BpNet: it has one heatmap and one PAF output per stage."""
    outputs = len(model.outputs)
    if outputs < 2 or outputs % 2:
        raise ValueError(
            f"a BodyPoseNet has one heatmap and one PAF output per stage; this model has {outputs}"
        )
    return outputs // 2
