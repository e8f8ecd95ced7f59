"""The session's conversion memo (tests/support/conversion_memo.py): one real tf2onnx
conversion per model content, a copy of its file for the same content again, a real
conversion again for any change in weights or input size."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from tests.support.conversion_memo import ConversionMemo


def _model(height: int, seed: int) -> Any:
    """A small Keras model named as BodyPoseNet's outputs are (keras_to_onnx renames them)."""
    from bodypose_exporter.model.keras_backend import keras

    inputs = keras.Input((height, 32, 3), name="input_1")
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    out = keras.layers.Conv2D(2, 1, name="heatmap_out")(x)
    model = keras.Model(inputs, out, name="tiny")
    rng = np.random.default_rng(seed)
    model.set_weights([rng.standard_normal(w.shape).astype("float32") for w in model.weights])
    return model


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_same_content_is_converted_once_and_any_change_again(tmp_path: Path) -> None:
    memo = ConversionMemo(tmp_path / "store")
    (tmp_path / "store").mkdir()

    first = memo(_model(16, seed=0), tmp_path / "a.onnx")
    again = memo(_model(16, seed=0), tmp_path / "b.onnx")  # rebuilt: same content
    assert (len(memo.converted_seconds), memo.reused) == (1, 1)
    assert _sha(tmp_path / "b.onnx") == _sha(tmp_path / "a.onnx")
    assert again.path == tmp_path / "b.onnx" and first.path == tmp_path / "a.onnx"
    assert again.output_names == first.output_names == ["heatmap_out/BiasAdd:0"]

    memo(_model(16, seed=1), tmp_path / "c.onnx")  # other weights
    memo(_model(24, seed=0), tmp_path / "d.onnx")  # other input size
    assert (len(memo.converted_seconds), memo.reused) == (3, 1)
    assert len({_sha(tmp_path / f"{n}.onnx") for n in "acd"}) == 3
    assert memo.figure().startswith("TensorFlow-to-ONNX conversions in this process: 3 run")
