"""TensorFlow's native start-up chatter kept off the terminal, everything else kept.

TensorFlow 2.21 logs through absl before `absl::InitializeLog()` runs, so
`TF_CPP_MIN_LOG_LEVEL` no longer silences its import-time lines (oneDNN, the
CUDA stubs, `cuInit` on a machine without a GPU, the CPU feature guard, the
grappler session lines that tf2onnx triggers): what is left to us is the file
descriptor. `quiet_native_logs()` sends fd 2 to a temporary file for the
duration of a block, then writes back every line that is not native INFO or
WARNING chatter (so errors, Python warnings and tracebacks still reach the
user, after the block).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

# The two native line prefixes: absl's (TensorFlow 2.21: severity, MMDD, time,
# thread id, file:line]) and TSL's own (2.20 and older: date time: severity file:line]).
_ABSL = r"[{levels}]\d{{4}} \d\d:\d\d:\d+\.\d+\s+\d+ [\w./-]+:\d+\] "
_TSL = r"\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [{levels}] [\w./-]+:\d+\] "
_NATIVE = re.compile("^(?:" + _ABSL.format(levels="IW") + "|" + _TSL.format(levels="IW") + ")")
_KNOWN = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "To enable the following instructions:",  # the CPU feature guard's second line
)
# With no GPU (or CUDA_VISIBLE_DEVICES=""), TensorFlow reports cuInit failing as an
# error; the export stage never uses a GPU, so this one error says nothing.
_NO_GPU = re.compile(
    r"^(?:E\d{4} |\d{4}-\d\d-\d\d [\d:.]+: E ).*cuda_\w+\.cc:\d+\] failed call to cuInit"
)


def is_chatter(line: str) -> bool:
    return bool(_NATIVE.match(line) or _NO_GPU.match(line) or line.startswith(_KNOWN))


@contextmanager
def quiet_native_logs() -> Iterator[None]:
    if os.environ.get("BODYPOSE_NATIVE_LOGS") == "1":  # to see everything, for a bug report
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [
                line
                for line in capture.read().decode(errors="replace").splitlines(keepends=True)
                if not is_chatter(line)
            ]
            sys.stderr.write("".join(kept))
            sys.stderr.flush()
