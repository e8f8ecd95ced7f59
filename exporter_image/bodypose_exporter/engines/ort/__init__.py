"""The ONNX Runtime backend: CPU pools, the local demo, and every test without a GPU.

Same files, same roles as `engines/trt/`: `backend` (the `BACKEND` the
registry hands out), `builder` (the graph-optimized model), `runner` (an
InferenceSession), `hardware` (the CPU and its instruction sets).
"""
