"""Comparing a built engine's outputs with the FP32 reference, and the gates that decide."""
