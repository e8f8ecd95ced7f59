"""The ONNX Runtime backend: CPU pools, the local demo, and every test without a GPU."""
