"""One TensorFlow-to-ONNX conversion per model content in a test session (issue 32, item 5:
"share what many tests rebuild ... cached by content like the images").

Why: the exports made inside the test process convert the same few models again and
again (the sample at 224x320 alone, plain and SDK-compatible, in most of tests/exporter,
tests/cli, tests/evaluation), and the conversion is most of an export: an export of the
sample at 224x320 spent 7.4 of its 12.2 cpu-s in `keras_to_onnx` (tf2onnx) on this
repository's machines (the manifest's `timingsSeconds.convert`). Here the first
conversion of each content runs for real and its ONNX file is kept in the session's
temporary directory; a later conversion of the same content gets a copy of that file,
and everything around it - the Keras model built, the fidelity check against Keras,
calibration, encryption, publishing - still runs.

The key is what tf2onnx reads: the Keras model's JSON (architecture, layer names, input
size) and every weight's name and bytes (0.08 s for the sample); the opset and the
renames after it are fixed in `convert/keras_to_onnx.py`, the same for the whole session.

What a reused file differs in: nothing a test reads. tf2onnx names the Transposes it
inserts from a process-wide counter which `keras_to_onnx` resets, yet the first
conversion in a process still names one of them `__8` where later ones say `__7` (two
exports of the same sample in one process, compared node by node); the reused file is the
first conversion's, which is also what an export pod writes (one conversion per process).
Exports in subprocesses (the README's examples, the CLI's --help runs) and in the
cluster's pods convert for real, as does `tests/calibration/test_bpnet.py`, which calls
`keras_to_onnx` itself.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pytest

#: Where exports take `keras_to_onnx` from (stages/export.py imports it by name).
EXPORT_STAGE = "bodypose_exporter.stages.export"


def model_digest(model: Any) -> str:
    """What tf2onnx converts: the model's JSON and every weight, by name and bytes."""
    digest = hashlib.sha256(model.to_json().encode())
    for weight in model.weights:
        digest.update(weight.name.encode())
        digest.update(weight.numpy().tobytes())
    return digest.hexdigest()


class ConversionMemo:
    """`keras_to_onnx` with one real conversion per model content; counts both kinds."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self.infos: dict[str, Any] = {}
        self.converted_seconds: list[float] = []
        self.reused = 0

    def __call__(self, model: Any, onnx_path: Path) -> Any:
        key = model_digest(model)
        kept = self.store / f"{key}.onnx"
        if key in self.infos:
            shutil.copyfile(kept, onnx_path)
            self.reused += 1
            return dataclasses.replace(self.infos[key], path=onnx_path)
        started = time.process_time()
        from bodypose_exporter.convert.keras_to_onnx import keras_to_onnx

        info = keras_to_onnx(model, onnx_path)
        self.converted_seconds.append(time.process_time() - started)
        shutil.copyfile(onnx_path, kept)
        self.infos[key] = info
        return info

    def patch(self, monkeypatch: pytest.MonkeyPatch, *, load: bool = False) -> None:
        """Exports in this process convert through the memo while `monkeypatch` holds;
        without `load`, only if the export stage is imported already (importing it
        imports TensorFlow: seconds that tests which export nothing need not pay)."""
        if load:
            __import__(EXPORT_STAGE)
        if EXPORT_STAGE in sys.modules:
            monkeypatch.setattr(sys.modules[EXPORT_STAGE], "keras_to_onnx", self)

    def figure(self) -> str:
        converted = sorted(self.converted_seconds)
        median = converted[len(converted) // 2] if converted else 0.0
        return (
            f"TensorFlow-to-ONNX conversions in this process: {len(converted)} run "
            f"(median {median:.1f} cpu-s), {self.reused} reused by content "
            "(tests/support/conversion_memo.py)"
        )
