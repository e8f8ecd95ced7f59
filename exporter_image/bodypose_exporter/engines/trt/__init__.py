"""The TensorRT 10 backend (GPU pools). Importable only where `tensorrt` and cuda-python are.

- `runtime`: importing TensorRT and NVIDIA's CUDA runtime bindings, error checks;
- `device`: device buffers through cuda-python;
- `hardware`: what the engine is built for (GPU, compute capability, versions);
- `calibrator`: the IInt8EntropyCalibrator2 that replays cal.bin or reads the tensorfile;
- `precision`: `-s` as obey-precision-constraints with per-layer precisions;
- `backend`: the builder; `runner`: the engine runner.
"""
