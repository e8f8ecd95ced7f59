"""Running an ONNX Runtime artifact (or any ONNX model): NHWC float32 batches in, outputs by name.

The same role as `engines/trt/runner.py`; followed: Polygraphy's
`backend/onnxrt/runner.py` (one session per loaded model, inputs and outputs
by name).

An int8 artifact says in its metadata which CPU class it was built for
(`hardware.METADATA_KEYS`); one built with int8 weights for a CPU that
accumulates in 32 bits is refused on a CPU whose int8 kernels saturate
(`hardware` explains why), where its outputs would be silently wrong.

Threads: the session's intra-op pool is set explicitly from the pod's CPU budget
(`engines.cpu_budget`: affinity and cgroup quota), never left to ONNX Runtime's
default, which counts physical cores and ignores a quota; the runner says how
many it set and why (`threads`, `threads_from`), and the latency record copies
both.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from bodypose_exporter.engines import cpu_budget
from bodypose_exporter.engines.ort import hardware
from bodypose_exporter.errors import UserError

PROVIDERS = ["CPUExecutionProvider"]


class SaturatingCpuError(UserError):
    reason = "Int8ArtifactForAnotherCpu"


def check_runs_here(path: Path, recorded: dict[str, str], here: str) -> None:
    """Refuse an int8 artifact whose int8 weights would saturate on this CPU's class."""
    built_for = recorded.get(hardware.METADATA_KEYS["instructionSet"])
    weights = recorded.get(hardware.METADATA_KEYS["weights"])
    if weights == "int8" and hardware.saturates(here):
        raise SaturatingCpuError(
            f"{path} is an int8 artifact built for {built_for} CPUs (int8 weights); this CPU is "
            f"{here}, whose int8 kernels add products in saturating 16-bit lanes, so its outputs "
            "would be wrong here. Build the artifact on a node of this kind (its build then "
            "uses int7 or uint8 weights), or run it on a CPU with VNNI"
        )


class OrtRunner:
    """An ONNX Runtime session over a saved artifact (or any ONNX model)."""

    #: What a wall-clock figure around `run` includes (verification.latency records it):
    #: ONNX Runtime binds the host arrays and returns new ones; nothing crosses a device.
    run_includes = ("inference", "output conversion")

    def __init__(self, path: Path, threads: int = 0, allow_saturating: bool = False) -> None:
        """`threads`: the intra-op threads; 0: this process's CPU budget (`cpu_budget`).
        `allow_saturating`: run an int8 artifact built for another CPU class anyway
        (to measure what it would do here; `check_runs_here` says why it is refused)."""
        if threads > 0:
            why = f"set by the caller ({cpu_budget.budget().describe()})"
        else:
            here = cpu_budget.budget()
            threads, why = here.threads, here.describe()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=PROVIDERS)
        #: The intra-op threads its runs use, as the session holds them (what a latency
        #: figure was measured with), and where the number came from.
        self.threads: int = int(self.session.get_session_options().intra_op_num_threads)
        self.threads_from: str = why
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
