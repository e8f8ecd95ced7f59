"""Running an ONNX Runtime artifact (or any ONNX model): NHWC float32 batches in, outputs by name.

The same role as `engines/trt/runner.py`; followed: Polygraphy's
`backend/onnxrt/runner.py` (one session per loaded model, inputs and outputs
by name).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

PROVIDERS = ["CPUExecutionProvider"]


class OrtRunner:
    """An ONNX Runtime session over a saved artifact (or any ONNX model)."""

    def __init__(self, path: Path, threads: int = 0) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0: ONNX Runtime's default (one per core)
        self.session = ort.InferenceSession(str(path), options, providers=PROVIDERS)
        self.input_name: str = self.session.get_inputs()[0].name
        self.output_names: list[str] = [o.name for o in self.session.get_outputs()]
        batch = self.session.get_inputs()[0].shape[0]
        self.max_batch_size: int = batch if isinstance(batch, int) and batch > 0 else 64

    def run(self, inputs: npt.NDArray[np.float32]) -> dict[str, npt.NDArray[np.float32]]:
        feed = {self.input_name: np.ascontiguousarray(inputs, dtype=np.float32)}
        outputs = self.session.run(self.output_names, feed)
        return {
            n: np.asarray(v, dtype=np.float32)
            for n, v in zip(self.output_names, outputs, strict=True)
        }

    def close(self) -> None:
        del self.session
