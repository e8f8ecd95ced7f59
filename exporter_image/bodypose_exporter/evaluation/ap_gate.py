"""The accuracy gate: how far an engine's OKS AP may fall below the FP32 model's.

The limits are TAO's (NVIDIA/tao_tutorials `bpnet.ipynb`,
section 10.3, "evaluate the TensorRT engine ... compare with the .tlt"):
FP32 and FP16 engines should show little or no drop, INT8 should stay within
2-3% mAP of the `.tlt`. In AP points (AP x 100), the unit of `maxApDrop` and
`--max_ap_drop`: fp32 and fp16 0.5, int8 3. A larger INT8 drop, the guide
says, means too little or unrepresentative calibration data, so the failure
message ends with that advice.

An engine whose decoding hit the heatmap candidate cap (`peaks`) on more
images than the FP32 model's did is refused whatever its AP: heatmaps that
flat or noisy are a broken engine's, and its AP says nothing about the
keypoints users would get. The refusal names the cap. (The FP32 model's own
count is the baseline, so an image that legitimately crowds the cap for both
does not refuse the engine.)

`check_ap_drop` returns a verdict (the build stage records it either way);
`enforce_ap_drop` raises `ApDropError` (exit code 3, like the verification
gates) when it failed. Engine-vs-FP32 output agreement is gated separately by
`verification.agreement_gates`; this gate is about the keypoints users get.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bodypose_exporter.errors import UserError
from bodypose_exporter.evaluation.ap_figures import ApFigures
from bodypose_exporter.evaluation.peaks import MAX_CANDIDATES_PER_JOINT

#: Largest AP drop, in AP points, allowed by default per precision.
DEFAULT_MAX_AP_DROP = {"fp32": 0.5, "fp16": 0.5, "int8": 3.0}

ADVICE = {
    "int8": "An INT8 drop this large usually means too little or unrepresentative calibration "
    "data: calibrate on more images (--batches x --batch_size; TAO suggests 10-20% of the "
    "training set) that look like the images the engine will see, deleting the old cal.bin "
    "first; or deploy fp16.",
    "fp16": "FP16 should lose almost nothing: check that the engine was built from this "
    "model, or deploy fp32.",
    "fp32": "An FP32 engine should lose nothing: check that it was built from this model.",
}

#: After a refusal for the candidate cap: what makes an engine's heatmaps that flat.
CAPPED_ADVICE = {
    **ADVICE,
    "int8": "An INT8 engine's heatmaps go this flat when its calibration ranges are wrong (a "
    "cal.bin from blank or unrelated images does it): calibrate on more images (--batches x "
    "--batch_size; TAO suggests 10-20% of the training set) that look like the images the "
    "engine will see, deleting the old cal.bin first; or deploy fp16.",
}


class ApDropError(UserError):
    """An engine's OKS AP fell further below the FP32 model's than the limit allows."""

    reason = "AccuracyDropTooLarge"
    exit_code = 3


@dataclass(frozen=True)
class ApDropVerdict:
    precision: str
    reference_ap: float  # AP (0..1) of the FP32 model
    engine_ap: float  # AP (0..1) of the engine
    drop: float  # AP points: (reference - engine) x 100
    limit: float  # AP points
    passed: bool
    #: Images on which the engine's / the FP32 model's decoding hit the candidate cap.
    capped_images: int = 0
    reference_capped_images: int = 0
    images: int = 0  # images evaluated

    @property
    def broken(self) -> bool:
        """The engine's heatmaps hit the candidate cap where the FP32 model's did not."""
        return self.capped_images > self.reference_capped_images

    @property
    def message(self) -> str:
        head = (
            f"{self.precision} engine AP {self.engine_ap * 100:.2f} vs FP32 AP "
            f"{self.reference_ap * 100:.2f}: a drop of {self.drop:.2f} AP points"
        )
        if self.broken:
            return (
                f"{self.precision} engine refused: its heatmaps gave more than "
                f"{MAX_CANDIDATES_PER_JOINT} peak candidates of a joint (the decoder's cap per "
                f"joint) on {self.capped_images} of {self.images} evaluation images, the FP32 "
                f"model's on {self.reference_capped_images}. Heatmaps that flat or noisy come "
                "from a broken engine, so its AP says nothing about its keypoints (AP "
                f"{self.engine_ap * 100:.2f} vs FP32 AP {self.reference_ap * 100:.2f}, a drop of "
                f"{self.drop:.2f} AP points; limit {self.limit:g}). {CAPPED_ADVICE[self.precision]}"
            )
        if self.passed:
            return f"{head}, within the limit of {self.limit:g}"
        return f"{head} exceeds the limit of {self.limit:g} (maxApDrop). {ADVICE[self.precision]}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "referenceAP": self.reference_ap,
            "engineAP": self.engine_ap,
            "apDrop": self.drop,
            "maxApDrop": self.limit,
            "passed": self.passed,
            "peakCandidatesCapped": self.capped_images,
        }


def max_ap_drop_for(precision: str, max_ap_drop: float | None = None) -> float:
    """The limit in AP points: the one given, else the precision's default."""
    if precision not in DEFAULT_MAX_AP_DROP:
        raise UserError(
            f"unknown precision {precision!r}; choose one of {', '.join(DEFAULT_MAX_AP_DROP)}"
        )
    if max_ap_drop is None:
        return DEFAULT_MAX_AP_DROP[precision]
    if max_ap_drop < 0:
        raise UserError(f"--max_ap_drop must not be negative, got {max_ap_drop:g} AP points")
    return max_ap_drop


def check_ap_drop(
    reference: ApFigures, engine: ApFigures, precision: str, max_ap_drop: float | None = None
) -> ApDropVerdict:
    """The engine's AP drop against the FP32 reference, judged by the precision's limit.

    `max_ap_drop` is in AP points (AP x 100); None takes the default for
    `precision`. A drop equal to the limit passes; a gain is a negative drop.
    An engine that hit the candidate cap on more images than the reference
    fails whatever its drop.
    """
    limit = max_ap_drop_for(precision, max_ap_drop)
    drop = round((reference.ap - engine.ap) * 100, 6)  # no float noise at the limit
    broken = engine.peak_candidates_capped > reference.peak_candidates_capped
    return ApDropVerdict(
        precision, reference.ap, engine.ap, drop, limit, drop <= limit and not broken,
        capped_images=engine.peak_candidates_capped,
        reference_capped_images=reference.peak_candidates_capped,
        images=engine.images,
    )  # fmt: skip


def enforce_ap_drop(verdict: ApDropVerdict) -> None:
    if not verdict.passed:
        raise ApDropError(verdict.message)
