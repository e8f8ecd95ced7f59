"""Serving configs written beside each engine: a Triton model repository and a DeepStream config.

- `bindings`: an ONNX model's inputs and outputs as a server sees them;
- `triton`: `triton/<model>/config.pbtxt` and the model file in `1/`;
- `deepstream`: the nvinfer config `bodypose2d_pgie_config.txt`;
- `paths`: the relative paths those files use to name their neighbours.
"""
