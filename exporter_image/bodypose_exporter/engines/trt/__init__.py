"""The TensorRT 10 backend (GPU pools). Importable only where `tensorrt` and cuda-python are.

Same files, same roles as `engines/ort/`:

- `backend`: the `BACKEND` the registry hands out; `builder`: the engine build;
  `runner`: the engine runner; `hardware`: what the engine is built for (GPU,
  compute capability, versions);

and what only TensorRT needs:

- `runtime`: importing TensorRT and NVIDIA's CUDA runtime bindings, error checks;
- `device`: device buffers through cuda-python;
- `calibrator`: the IInt8EntropyCalibrator2 that replays cal.bin or reads the tensorfile;
- `precision`: `-s` as obey-precision-constraints with per-layer precisions.
"""
