"""Running an ONNX Runtime artifact (or any ONNX model): NHWC float32 batches in, outputs by name.

The same role as `engines/trt/runner.py`; followed: Polygraphy's
`backend/onnxrt/runner.py` (one session per loaded model, inputs and outputs
by name).

An int8 artifact says in its metadata which CPU class it was built for
(`hardware.METADATA_KEYS`); one built with int8 weights for a CPU that
accumulates in 32 bits is refused on a CPU whose int8 kernels saturate
(`hardware` explains why), where its outputs would be silently wrong.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from bodypose_exporter.engines.ort import hardware
from bodypose_exporter.errors import UserError

PROVIDERS = ["CPUExecutionProvider"]


class SaturatingCpuError(UserError):
    reason = "Int8ArtifactForAnotherCpu"


def check_runs_here(path: Path, recorded: dict[str, str], here: str) -> None:
    """Refuse an int8 artifact whose int8 weights would saturate on this CPU's class."""
    built_for = recorded.get(hardware.METADATA_KEYS["instructionSet"])
    weights = recorded.get(hardware.METADATA_KEYS["weights"])
    if weights == "int8" and hardware.int8_weights(here) == "uint8":
        raise SaturatingCpuError(
            f"{path} is an int8 artifact built for {built_for} CPUs (int8 weights); this CPU is "
            f"{here}, whose int8 kernels add products in saturating 16-bit lanes, so its outputs "
            "would be wrong here. Build the artifact on a node of this kind (its build then "
            "uses uint8 weights), or run it on a CPU with VNNI"
        )


class OrtRunner:
    """An ONNX Runtime session over a saved artifact (or any ONNX model)."""

    def __init__(self, path: Path, threads: int = 0, allow_saturating: bool = False) -> None:
        """`allow_saturating`: run an int8 artifact built for another CPU class anyway
        (to measure what it would do here; `check_runs_here` says why it is refused)."""
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0: ONNX Runtime's default (one per core)
        #: The threads its runs use (what a latency figure was measured with).
        self.threads: int = threads or os.cpu_count() or 1
        self.session = ort.InferenceSession(str(path), options, providers=PROVIDERS)
        if not allow_saturating:
            check_runs_here(
                path,
                dict(self.session.get_modelmeta().custom_metadata_map),
                hardware.describe()["int8InstructionSet"],
            )
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
