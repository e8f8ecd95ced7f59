"""Default gates per precision, their overrides, and the message of a failed gate.

A gate is a bound on one figure (`agreement_figures.agreement`): `maxAbsDiff` at most,
`cosine` and `peakAgreement` at least. The defaults, and the measurements
behind them (sample BpNet at 224x320, 8 held-back sample images, ONNX
Runtime; `benchmarks/engines.py` and the tests repeat them):

- fp32: the engine should compute what the ONNX model computes. ONNX Runtime
  artifacts agree exactly (maxAbsDiff 0); TensorRT fp32 engines are built
  without TF32 (`engines/trt/backend.py`), leaving only kernel-order noise.
  Gates: maxAbsDiff 0.005, cosine 0.9999, peakAgreement 0.99.
- fp16: rounding every activation to FP16 (ONNX Cast pairs after each layer,
  run in ONNX Runtime) gives maxAbsDiff 0.011, cosine 0.99999, peaks 0.998;
  TensorRT also accumulates in FP16. Gates: maxAbsDiff 0.05, cosine 0.999,
  peakAgreement 0.95.
- int8: no absolute bound (one quantization step of a wide activation is
  already tenths). The QDQ model from entropy calibration on 16 images gives
  cosine 0.999 and peakAgreement 0.88 (0.86 from a single image), while
  ranges deliberately off by x3, x10, x0.3 and x0.1 give cosine 0.994,
  0.954, 0.950, 0.872 and peakAgreement 0.78, 0.62, 0.40, 0.18. Gates:
  cosine 0.98, peakAgreement 0.85, which pass every sound calibration
  measured and fail every broken one. The sample network is untrained: its
  heatmaps are noise with ~250 candidate peaks an image, many a hair above
  their neighbours, which is what holds its int8 peak agreement near 0.88; a
  trained network's peaks (one per person and joint) move far less.

A failed gate raises `VerificationError` naming each failed figure, its value
and gate, and the causes the TAO BodyPoseNet guide gives when INT8 accuracy
drops (NVIDIA/tao_tutorials `bpnet.ipynb`, section 10.3): too little
calibration data, calibration images unrepresentative of the deployment
images, an unlucky random sample.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bodypose_contract.manifest import Key
from bodypose_exporter.errors import UserError

DEFAULT_GATES: dict[str, dict[str, float]] = {
    "fp32": {"maxAbsDiff": 0.005, "cosine": 0.9999, "peakAgreement": 0.99},
    "fp16": {"maxAbsDiff": 0.05, "cosine": 0.999, "peakAgreement": 0.95},
    "int8": {"cosine": 0.98, "peakAgreement": 0.85},
}
#: Figure name -> the flag that overrides its gate (bpnet-export and bpnet-build).
GATE_FLAGS = {
    "maxAbsDiff": "--max_abs_diff",
    "cosine": "--min_cosine",
    "peakAgreement": "--min_peak_agreement",
}

INT8_CAUSES = (
    "Likely causes (TAO's BodyPoseNet guide): too little calibration data (raise --batches "
    "or --batch_size; TAO recommends 10-20% of the training data), calibration images that do "
    "not represent the deployment images (add images like those the engine will see), or an "
    "unlucky random sample of them; or ranges the calibration method clipped (entropy clips "
    "sparse outputs such as PAFs hard: try --cal_method percentile, a resource's "
    "calibration.method); a fresh calibration needs the old --cal_cache_file deleted. Or "
    "deploy fp16."
)
FLOAT_CAUSES = (
    "Reduced-precision engines on this GPU lose more than the gate allows; check the "
    "TensorRT log for layers it could not run as asked, or deploy fp32."
)


class VerificationError(UserError):
    reason = "VerificationFailed"
    exit_code = 3

    def __init__(self, message: str, verdict: Verdict) -> None:
        super().__init__(message)
        self.verdict = verdict
        #: The stage's manifest of the rejected build, when a stage raised this.
        self.manifest: dict[str, Any] | None = None


#: What the manifest's `verification.outcome` says of an engine.
VERIFIED, FAILED, NOT_RUN = "verified", "failed", "built, not run"


@dataclass(frozen=True)
class Verdict:
    precision: str
    figures: dict[str, float]
    gates: dict[str, float]
    failures: tuple[str, ...]
    #: Why the engine was not run (then there are no figures and no gate was applied).
    not_run: str | None = None

    @property
    def passed(self) -> bool:
        """No gate failed: true of an engine that was not run too (nothing was judged), so
        what it says of an engine is `outcome`."""
        return not self.failures

    @property
    def outcome(self) -> str:
        if self.not_run is not None:
            return NOT_RUN
        return VERIFIED if self.passed else FAILED

    def as_dict(self) -> dict[str, Any]:
        """The manifest's `verification`: an engine that was not run has no figures, no
        gates and no `passed` (nothing judged it), only `run: false` and the reason."""
        if self.not_run is not None:
            return {
                "precision": self.precision,
                "figures": {},
                "gates": {},
                Key.RUN: False,
                "outcome": self.outcome,
                Key.NOT_RUN_REASON: self.not_run,
            }
        return {
            "precision": self.precision,
            "figures": self.figures,
            "gates": self.gates,
            "passed": self.passed,
            "failures": list(self.failures),
            "run": True,
            "outcome": self.outcome,
        }


def gates_for(precision: str, overrides: Mapping[str, float | None]) -> dict[str, float]:
    unknown = [k for k in overrides if k not in GATE_FLAGS]
    if unknown:
        raise ValueError(f"no gate named {unknown}")
    gates = dict(DEFAULT_GATES[precision])
    gates.update({k: float(v) for k, v in overrides.items() if v is not None})
    return gates


def judge(
    precision: str, figures: Mapping[str, float], overrides: Mapping[str, float | None]
) -> Verdict:
    gates = gates_for(precision, overrides)
    failures = []
    for name, gate in gates.items():
        value = figures.get(name)
        if value is None:
            continue
        if name == "maxAbsDiff" and value > gate:
            failures.append(f"{name} {value:.4g} > gate {gate:g} ({GATE_FLAGS[name]})")
        elif name != "maxAbsDiff" and value < gate:
            failures.append(f"{name} {value:.4g} < gate {gate:g} ({GATE_FLAGS[name]})")
    return Verdict(precision, dict(figures), gates, tuple(failures))


def enforce(verdict: Verdict, backend: str) -> None:
    """Raise VerificationError if any gate failed."""
    if verdict.passed:
        return
    causes = INT8_CAUSES if verdict.precision == "int8" else FLOAT_CAUSES
    raise VerificationError(
        f"the {verdict.precision} {backend} engine disagrees with the FP32 reference: "
        f"{'; '.join(verdict.failures)}. {causes}",
        verdict,
    )
