"""Agreement figures between an engine's outputs and the FP32 ONNX Runtime reference.

Built on `bodypose_exporter.output_agreement`, the module the INT8 calibration's
QDQ-vs-FP32 agreement (`calibration/agreement.py`) uses too, so a cal.bin's
figures and an engine's read the same way:

- `maxAbsDiff`: the largest |engine - reference| over every output element;
- `heatmapCosine`, `pafCosine`: cosine similarity of the flattened output,
  per image, averaged over images; `cosine` is the smaller of the two (the
  gated figure) and `cosineWorstImage` the smallest single-image value;
- `peakAgreement`: the share of the reference's keypoint candidates (found
  as TAO's decoder finds them, `output_agreement.smoothed_maxima`: Gaussian smoothing,
  4-neighbour maxima above 0.1, on each joint channel; the background
  channel is left out) that the engine also has within one heatmap cell
  (8 input pixels at BpNet's stride; the decoder places keypoints inside a
  cell by cubic upsampling). Candidates are what bottom-up decoding starts
  from, and a heatmap holds one per person, so a global maximum per channel
  (calibration's `peakArgmaxMatch`, also reported, not gated) is ill-defined
  with several people in the image; `peakCandidates` is how many there were;
- `peakArgmaxMatch`: the calibration stage's figure, the share of
  (image, keypoint) pairs whose channel maximum is at the same pixel.

Outputs are told apart by name (`heatmap...`, `paf...`, the SDK model's
`conv2d_transpose_1` PAF), else by channel count (19 heatmap, 38 PAF).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

# The definitions calibration.agreement uses too, so that both sets of figures mean the same.
from bodypose_exporter.output_agreement import (
    HEATMAP_THRESHOLD,
    argmax_peaks,
    output_roles,
    per_image_cosine,
    smoothed_maxima,
)

Array = npt.NDArray[np.float32]


def roles(outputs: Mapping[str, Array]) -> dict[str, str]:
    """{"heatmap": name, "paf": name} for the outputs that can be told apart."""
    return output_roles(outputs)


def agreement(reference: Mapping[str, Array], got: Mapping[str, Array]) -> dict[str, float]:
    missing = [name for name in reference if name not in got]
    if missing:
        raise ValueError(f"the engine has no output(s) {missing}; it gives {list(got)}")
    max_abs = 0.0
    for name, ref in reference.items():
        if got[name].shape != ref.shape:
            raise ValueError(
                f"output {name}: engine shape {got[name].shape}, reference {ref.shape}"
            )
        max_abs = max(max_abs, float(np.max(np.abs(got[name].astype(np.float64) - ref))))
    figures = {"maxAbsDiff": max_abs}
    found = roles(reference)
    cosines = []
    for role in ("heatmap", "paf"):
        if role in found:
            name = found[role]
            values = per_image_cosine(reference[name], got[name])
            figures[f"{role}Cosine"] = float(values.mean())
            cosines.append(values)
    if not cosines:  # unknown outputs: every output, whole-tensor
        cosines = [per_image_cosine(reference[n], got[n]) for n in reference]
    figures["cosine"] = min(float(c.mean()) for c in cosines)
    figures["cosineWorstImage"] = min(float(c.min()) for c in cosines)
    if "heatmap" in found:
        name = found["heatmap"]
        matched, total = candidate_agreement(reference[name], got[name])
        figures["peakAgreement"] = matched / total if total else 1.0
        figures["peakCandidates"] = float(total)
        same = argmax_peaks(reference[name]) == argmax_peaks(got[name])
        figures["peakArgmaxMatch"] = float(same.mean())
    return figures


def candidate_agreement(reference: Array, got: Array, tolerance: int = 1) -> tuple[int, int]:
    """(matched, total): reference candidates with an engine candidate within `tolerance` cells."""
    matched = total = 0
    for image in range(reference.shape[0]):
        for joint in range(reference.shape[-1] - 1):
            ref = smoothed_maxima(reference[image, :, :, joint], HEATMAP_THRESHOLD)
            total += len(ref)
            if not len(ref):
                continue
            eng = smoothed_maxima(got[image, :, :, joint], HEATMAP_THRESHOLD)
            if not len(eng):
                continue
            distance = np.abs(ref[:, None, :] - eng[None, :, :]).max(axis=-1).min(axis=1)
            matched += int((distance <= tolerance).sum())
    return matched, total
