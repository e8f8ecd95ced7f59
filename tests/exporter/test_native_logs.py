"""TensorFlow's native start-up chatter stays off the user's terminal; errors do not."""

from __future__ import annotations

import subprocess
import sys

from bodypose_exporter.native_logs import is_chatter


def test_the_lines_tensorflow_prints_at_start_up_are_chatter() -> None:
    assert is_chatter(
        "I0000 00:00:1795851155.714526   25661 port.cc:153] oneDNN custom operations are on."
    )
    assert is_chatter("W0000 00:00:1795851155.7 1 cpu_feature_guard.cc:227] This TensorFlow")
    assert is_chatter(
        "E0000 00:00:1795851059.241015   24068 cuda_platform.cc:52] failed call to cuInit: "
        "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)"
    )
    # TensorFlow 2.20's own format (TSL logging).
    assert is_chatter(
        "2026-11-28 07:43:02.836391: E external/local_xla/xla/stream_executor/cuda/"
        "cuda_platform.cc:51] failed call to cuInit: INTERNAL: CUDA error"
    )
    assert is_chatter("2026-11-28 07:43:02.836391: I tensorflow/core/util/port.cc:153] oneDNN")
    assert not is_chatter("2026-11-28 07:43:02.836391: E tensorflow/core/kernel.cc:1] OOM")
    assert is_chatter(
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
    )
    # Other native errors, Python warnings and tracebacks reach the user.
    assert not is_chatter("E0000 00:00:1.0 1 op_kernel.cc:1] OOM when allocating tensor")
    assert not is_chatter("Traceback (most recent call last):")
    assert not is_chatter("UserWarning: something the user should see")


def test_importing_the_keras_backend_prints_nothing_but_what_matters() -> None:
    code = (
        "import sys\n"
        "from bodypose_exporter.model.keras_backend import tf\n"
        "print('still here', file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr == "still here\n"
