"""Running a TensorRT-RTX engine: Polygraphy's TensorRT runner, driving TensorRT-RTX.

Only where the pod can open a CUDA device of a compute capability the engine
was built for (`hardware.run_decision`); the build stage asks
`backend.TensorRTRTXBackend.not_run_reason` first and, without one, records
the engine as built and not run. Nothing on the development machines or in
CI has such a GPU, so this module has never run here (README, "TensorRT").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bodypose_exporter.engines.trt_rtx.runtime import tensorrt_rtx


class TensorRTRTXRunner:
    #: What a wall-clock figure around `run` includes (verification.latency records it):
    #: Polygraphy's `TrtRunner.infer` copies the inputs to the device, runs, copies the
    #: outputs back and synchronizes (polygraphy/backend/trt/runner.py, `_infer_impl`).
    run_includes = (
        "host-to-device copies",
        "inference",
        "device-to-host copies",
        "output conversion",
    )

    def __init__(self, engine_path: Path) -> None:
        from polygraphy.backend.trt import EngineFromBytes, TrtRunner

        tensorrt_rtx()
        self._runner: Any = TrtRunner(EngineFromBytes(engine_path.read_bytes()))
        self._runner.activate()
        engine = self._runner.engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        is_input = [engine.get_tensor_mode(n).name == "INPUT" for n in names]
        self.input_name: str = next(n for n, i in zip(names, is_input, strict=True) if i)
        self.output_names: list[str] = [n for n, i in zip(names, is_input, strict=True) if not i]
        shape = engine.get_tensor_profile_shape(self.input_name, 0)
        self.max_batch_size: int = int(shape[2][0])

    def run(self, inputs: npt.NDArray[np.float32]) -> dict[str, npt.NDArray[np.float32]]:
        outputs = self._runner.infer({self.input_name: np.ascontiguousarray(inputs)})
        return {n: np.asarray(outputs[n], dtype=np.float32) for n in self.output_names}

    def close(self) -> None:
        self._runner.deactivate()
