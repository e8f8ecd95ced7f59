"""How closely the QDQ (int8) model follows the FP32 model on images calibration did not see.

Figures, per held-back image then summarised over images:

- cosine similarity of the flattened heatmaps, and of the PAFs;
- peak agreement: for every keypoint channel of the heatmap (TAO's heatmap has
  one channel per body part plus a last background channel, which is left
  out), whether the int8 maximum sits at the same pixel as the FP32 one.

The figures themselves (cosine, peaks, which output is which) are
`bodypose_exporter.output_agreement`, shared with engine verification.

The QDQ model runs with ONNX Runtime's graph optimizations off, so every
QuantizeLinear/DequantizeLinear pair is computed as written (quantize,
round, dequantize, then a float convolution): the exact arithmetic of the
explicitly quantized model, the same on every CPU, and what TensorRT's int8
kernels compute up to float rounding. With optimizations on, ONNX Runtime
fuses the pairs into its integer kernels, whose results depend on the CPU:
on x86 without VNNI its uint8 x int8 kernels saturate (`engines.ort.hardware`;
measured on the demo's model, AVX2: heatmap cosine 0.955 fused against
0.999 as written), which would describe this machine, not the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from bodypose_exporter.output_agreement import argmax_peaks, output_role, per_image_cosine

Array = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Agreement:
    images: int
    heatmap_cosine_mean: float
    heatmap_cosine_min: float
    paf_cosine_mean: float
    paf_cosine_min: float
    peak_match: float  # share of (image, keypoint) pairs whose heatmap peak is at the same pixel
    #: Where the figures were measured and how (the QDQ model as written: see above).
    measured_on: str = ""

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"QDQ vs FP32 on {self.images} held-back images: heatmap cosine "
            f"{self.heatmap_cosine_mean:.4f} (min {self.heatmap_cosine_min:.4f}), PAF cosine "
            f"{self.paf_cosine_mean:.4f} (min {self.paf_cosine_min:.4f}), heatmap peaks at "
            f"the same pixel {100 * self.peak_match:.1f}% ({self.measured_on})"
        )


def _run(session: ort.InferenceSession, images: Sequence[Array], chunk: int) -> dict[str, Array]:
    input_name = session.get_inputs()[0].name
    names = [o.name for o in session.get_outputs()]
    parts: dict[str, list[Array]] = {n: [] for n in names}
    for start in range(0, len(images), chunk):
        batch = np.stack(images[start : start + chunk]).astype(np.float32)
        for name, value in zip(names, session.run(names, {input_name: batch}), strict=True):
            parts[name].append(np.asarray(value, dtype=np.float32))
    return {n: np.concatenate(v) for n, v in parts.items()}


def compare(
    fp32_model: Path, qdq_model: Path, images: Sequence[Array], chunk: int = 8, cpu: str = "?"
) -> Agreement:
    """Run both models on `images` (each H x W x 3, preprocessed) and compare their outputs.

    `cpu` names the machine for the record (the figures do not depend on it).
    """
    if not images:
        raise ValueError("no held-back images to compare on")
    providers = ["CPUExecutionProvider"]
    reference = _run(ort.InferenceSession(str(fp32_model), providers=providers), images, chunk)
    as_written = ort.SessionOptions()
    as_written.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    quantized = _run(
        ort.InferenceSession(str(qdq_model), as_written, providers=providers), images, chunk
    )
    roles: dict[str, str] = {}
    for name, value in reference.items():
        role = output_role(name, int(value.shape[-1]))
        if role is not None and role not in roles:
            roles[role] = name
    if set(roles) != {"heatmap", "paf"}:
        raise ValueError(f"cannot tell heatmap and PAF apart among outputs {list(reference)}")
    heat_ref, heat_q = reference[roles["heatmap"]], quantized[roles["heatmap"]]
    paf_ref, paf_q = reference[roles["paf"]], quantized[roles["paf"]]
    heat_cos = per_image_cosine(heat_ref, heat_q)
    paf_cos = per_image_cosine(paf_ref, paf_q)
    peak_match = float(np.mean(argmax_peaks(heat_ref) == argmax_peaks(heat_q)))
    return Agreement(
        images=len(images),
        heatmap_cosine_mean=float(heat_cos.mean()),
        heatmap_cosine_min=float(heat_cos.min()),
        paf_cosine_mean=float(paf_cos.mean()),
        paf_cosine_min=float(paf_cos.min()),
        peak_match=peak_match,
        measured_on=f"QDQ as written, ONNX Runtime {ort.__version__} without graph "
        f"optimizations, on {cpu}",
    )
