"""The deploy-time BpNet: final-stage outputs only, optionally SDK post-processing.

Followed: NVIDIA/tao_tensorflow1_backend `nvidia_tao_tf1/cv/bpnet/utils/export_utils.py`
(`update_model`) and `nvidia_tao_tf1/cv/bpnet/exporter/bpnet_exporter.py`
(`export_to_etlt`, default `upsample_ratio=4`).

- Plain export: outputs `[paf_out, heatmap_out]` of the last stage, PAF first,
  as TAO orders them.
- `--sdk_compatible_model`: the PAF output is upsampled by a non-trainable
  `Conv2DTranspose` (kernel `upsample_ratio` x `upsample_ratio`, stride
  `upsample_ratio`, identity per channel: nearest-neighbour upsampling) named
  `conv2d_transpose_1`, because DeepStream's bodypose2d app and the TAO CV
  inference pipeline read the tensors `conv2d_transpose_1/BiasAdd:0` (PAF at
  stride 2) and `heatmap_out/BiasAdd:0` (NVIDIA-AI-IOT/deepstream_tao_apps,
  `apps/tao_others/deepstream-bodypose2d-app`). Keras would give the layer
  that name only if it were the first transpose conv built in the session, so
  we name it explicitly.
"""

from __future__ import annotations

import numpy as np

from bodypose_exporter.model.bpnet import stage_count
from bodypose_exporter.model.keras_backend import keras

SDK_PAF_LAYER = "conv2d_transpose_1"
DEFAULT_UPSAMPLE_RATIO = 4


def nearest_upsample_kernel(ratio: int, channels: int) -> np.ndarray:
    """Conv2DTranspose kernel (h, w, out, in) that copies channel i to channel i."""
    kernel = np.zeros((ratio, ratio, channels, channels), dtype=np.float32)
    for c in range(channels):
        kernel[:, :, c, c] = 1.0
    return kernel


def build_deploy_model(
    trained: keras.Model,
    height: int,
    width: int,
    sdk_compatible: bool = False,
    upsample_ratio: int = DEFAULT_UPSAMPLE_RATIO,
) -> keras.Model:
    """Rebuild `trained` at a fixed input size and keep the final-stage outputs.

    Rebuilding from the config (rather than wrapping) keeps TAO's layer names
    at the top level of the graph, so the ONNX tensor names match TAO's.
    """
    config = trained.get_config()
    for layer in config["layers"]:
        if layer["class_name"] == "InputLayer":
            channels = layer["config"]["batch_input_shape"][-1]
            layer["config"]["batch_input_shape"] = [None, height, width, channels]
    fixed = keras.Model.from_config(config)
    fixed.set_weights(trained.get_weights())

    stages = stage_count(fixed)
    heatmap = fixed.outputs[stages - 1]
    paf = fixed.outputs[2 * stages - 1]
    if sdk_compatible:
        channels = int(paf.shape[-1])
        upsample = keras.layers.Conv2DTranspose(
            channels,
            (upsample_ratio, upsample_ratio),
            strides=(upsample_ratio, upsample_ratio),
            padding="same",
            trainable=False,
            name=SDK_PAF_LAYER,
        )
        paf = upsample(paf)
        upsample.set_weights(
            [nearest_upsample_kernel(upsample_ratio, channels), np.zeros(channels, np.float32)]
        )
    return keras.Model(inputs=fixed.inputs, outputs=[paf, heatmap], name="bpnet_deploy")
