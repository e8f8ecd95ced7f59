"""Keras -> ONNX conversion (tf2onnx) and the checks that the result is faithful."""
