"""The FP32 reference an engine is verified against: inputs and ONNX Runtime's FP32 outputs.

Two sources:

- the export's `reference.npz` (`convert/fidelity.py`): the inputs the export
  checked ONNX against Keras on, and the FP32 ONNX Runtime outputs;
- images (held-back calibration images, or the sample images): preprocessed
  as TAO's inferencer does for engines (`calibration/preprocess.py`, the
  pixels evaluation's `letterbox` gives too), run
  through the FP32 ONNX model with ONNX Runtime here. Real images exercise
  the ranges calibration chose; noise inputs do not, which matters for int8.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx

from bodypose_exporter.calibration.images import CorruptImageError, decode
from bodypose_exporter.calibration.preprocess import Normalization, preprocess
from bodypose_exporter.convert.fidelity import read_verification_reference
from bodypose_exporter.engines.base import run_batched
from bodypose_exporter.engines.registry import ONNX_REFERENCE, backend_by_name
from bodypose_exporter.errors import UserError

Array = npt.NDArray[np.float32]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class Reference:
    inputs: Array  # N x H x W x 3
    outputs: dict[str, Array]
    source: str

    @property
    def count(self) -> int:
        return int(self.inputs.shape[0])


def from_npz(path: Path) -> Reference:
    inputs, outputs = read_verification_reference(path)
    return Reference(inputs.astype(np.float32), outputs, f"reference.npz ({len(inputs)} inputs)")


def image_paths(directory: Path, limit: int) -> list[Path]:
    """Up to `limit` images of `directory`, in name order (the reference is reproducible)."""
    if not directory.is_dir():
        raise UserError(f"--reference_images {directory} is not a directory")
    found = sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not found:
        raise UserError(f"--reference_images {directory} holds no .jpg/.jpeg/.png images")
    return found[:limit]


def read_image(path: Path) -> npt.NDArray[np.uint8]:
    """Decode as TAO does (cv2.imread colour); ValueError naming the file if it cannot be used."""
    try:
        return decode(path)
    except CorruptImageError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def preprocess_images(paths: Sequence[Path], height: int, width: int) -> Array:
    """TAO's strict-mode input (`calibration.preprocess`, evaluation's `letterbox` pixels)."""
    return np.stack([preprocess(read_image(p), height, width, Normalization()) for p in paths])


def from_images(onnx_path: Path, paths: Sequence[Path], height: int, width: int) -> Reference:
    inputs = preprocess_images(paths, height, width)
    runner = backend_by_name(ONNX_REFERENCE).load(onnx_path)
    try:
        outputs = run_batched(runner, inputs)
    finally:
        runner.close()
    return Reference(inputs, outputs, f"{len(paths)} images ({paths[0].parent})")


def input_hw(onnx_path: Path) -> tuple[int, int]:
    """(H, W) of the exported model's NHWC input."""
    model = onnx.load(str(onnx_path), load_external_data=False)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    return int(dims[1].dim_value), int(dims[2].dim_value)
