"""DeepStream's nvinfer config for BodyPoseNet: `bodypose2d_pgie_config.txt`.

Followed: NVIDIA-AI-IOT/deepstream_tao_apps
`configs/nvinfer/bodypose2d_tao/bodypose2d_pgie_config.txt` (the bodypose2d
app's primary GIE) and DeepStream's Gst-nvinfer property reference. Every
value comes from the exported model or the build:

- `onnx-file`: the ONNX the engine was built from (the QDQ model on the
  strongly typed route), relative to this file; never `tlt-model-key` or
  `tlt-encoded-model`: no key is ever written to a config;
- `model-engine-file`: the TensorRT engine beside it (absent for an ONNX
  Runtime target: nvinfer then builds its own engine from `onnx-file` on
  first start); `int8-calib-file`: cal.bin for int8;
- `infer-dims` H;W;C with `network-input-order=1` (NHWC, as exported);
- `net-scale-factor=0.00390625` (1/256) and `offsets=128.0;128.0;128.0`:
  nvinfer computes `net-scale-factor * (pixel - offset)`, TAO's
  `(pixel - 128) / 256`; `model-color-format=0` (RGB, as TAO trains);
- `output-blob-names`: the model's real outputs, `paf_out/BiasAdd:0` and
  `heatmap_out/BiasAdd:0`, or `conv2d_transpose_1/BiasAdd:0` and
  `heatmap_out/BiasAdd:0` with `--sdk_compatible_model` (the PAFs the
  bodypose2d app reads);
- `network-mode` 0 fp32, 1 int8, 2 fp16; `batch-size` the engine's maximum;
- `maintain-aspect-ratio=1`, `symmetric-padding=1` (TAO's strict-mode
  padding), `network-type=100` (other: the app decodes the tensors) with
  `output-tensor-meta=1` (the tensors attached to the frame metadata).
"""

from __future__ import annotations

from dataclasses import dataclass

from bodypose_exporter.manifest import Kind, file_name
from bodypose_exporter.serving.bindings import Bindings

FILE_NAME = file_name(Kind.DEEPSTREAM_CONFIG)
NETWORK_MODES = {"fp32": 0, "int8": 1, "fp16": 2}
NET_SCALE_FACTOR = "0.00390625"
OFFSETS = "128.0;128.0;128.0"


@dataclass(frozen=True)
class NvinferConfig:
    bindings: Bindings
    precision: str
    batch_size: int
    onnx_file: str
    engine_file: str | None
    calib_file: str | None

    def keys(self) -> dict[str, str]:
        height, width, channels = self.bindings.input.dims
        values = {
            "gpu-id": "0",
            "net-scale-factor": NET_SCALE_FACTOR,
            "offsets": OFFSETS,
            "model-color-format": "0",
            "onnx-file": self.onnx_file,
        }
        if self.engine_file:
            values["model-engine-file"] = self.engine_file
        if self.precision == "int8" and self.calib_file:
            values["int8-calib-file"] = self.calib_file
        values.update(
            {
                "infer-dims": f"{height};{width};{channels}",
                "network-input-order": "1",
                "batch-size": str(self.batch_size),
                "network-mode": str(NETWORK_MODES[self.precision]),
                "num-detected-classes": "1",
                "gie-unique-id": "1",
                "output-blob-names": ";".join(b.name for b in self.bindings.outputs),
                "network-type": "100",
                "output-tensor-meta": "1",
                "maintain-aspect-ratio": "1",
                "symmetric-padding": "1",
            }
        )
        return values


def config_text(config: NvinferConfig) -> str:
    lines = ["# written by bodypose-export; paths relative to this file", "[property]"]
    if not config.engine_file:
        lines.insert(1, "# no TensorRT engine for this target: nvinfer builds one from onnx-file")
    lines += [f"{key}={value}" for key, value in config.keys().items()]
    return "\n".join(lines) + "\n"
