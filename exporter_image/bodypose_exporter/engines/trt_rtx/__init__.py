"""The TensorRT-RTX backend: engines built ahead of time for named GPUs, on any machine.

NVIDIA TensorRT-RTX (`tensorrt_rtx`, from the package index) builds an
engine for the compute capabilities it is told, with no GPU in the pod, so
its build Jobs run on CPU pools; the engine runs on those GPUs (8.0, 8.6,
8.9, 12.x, and 7.5 when named: T4, A10, A100, L4, L40S, RTX-class; not
Hopper) under TensorRT-RTX's own runtime. Networks are strongly typed only,
as TensorRT 11's: fp32 from the FP32 graph, fp16 from the FP16 model; its
INT8 quantizes GEMM weights only, not convolution activations, so int8 is
not offered.

It extends the TensorRT backend rather than copying it, as Polygraphy's
`backend/tensorrt_rtx` extends `backend/trt`: the same plan type, network
loader and engine loader (`engines.trt.builder`), only the config step
differs (`CreateConfigRTX` with the compute capabilities). Same files as
the other backends (`engines/__init__.py`), and `runtime` (the import and
Polygraphy's switch to TensorRT-RTX), `epcontext` (the ONNX Runtime model
that wraps an engine).
"""
