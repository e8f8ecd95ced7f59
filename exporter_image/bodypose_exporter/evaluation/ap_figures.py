"""One evaluation's result: the five AP figures COCO reports, and what they were measured on.

AP, AP50, AP75, APm and APl are the first five of pycocotools' keypoint
summary (`COCOeval.summarize` for iouType "keypoints": AP at OKS 0.50:0.95,
at 0.50, at 0.75, for medium and for large people; TAO's names for them are
in `coco.STAT_NAMES`). pycocotools gives -1 where a figure has nothing to
measure (no medium people, say); it is kept as -1 and shown as "-".

`peak_candidates_capped` counts the images on which at least one joint had
more heatmap candidates than the decoder keeps (`peaks.MAX_CANDIDATES_PER_JOINT`):
a healthy model never gets near the cap, so figures with a count above the
reference's are those of a broken model or engine (`ap_gate.check_ap_drop`
refuses it). Records written before the count existed read back as 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bodypose_exporter.evaluation.coco import STAT_NAMES

#: Our names (manifest, status, table) -> TAO's / pycocotools' summary names.
AP_NAMES = {
    "AP": "AP_0.50:0.95_all",
    "AP50": "AP_0.5",
    "AP75": "AP_0.75",
    "APm": "AP_0.50:0.95_medium",
    "APl": "AP_0.50:0.95_large",
}


@dataclass(frozen=True)
class ApFigures:
    ap: float
    ap50: float
    ap75: float
    apm: float
    apl: float
    images: int  # images evaluated
    requested_images: int | None = None  # maxImages, when one was given
    annotated_people: int = 0  # people in the annotations of those images
    found_people: int = 0  # people the decoding found
    #: Images on which some joint hit the decoder's candidate cap (`peaks`).
    peak_candidates_capped: int = 0
    #: What a user should know about how the figures were made (e.g. fewer images than asked).
    notes: tuple[str, ...] = ()
    #: All ten of TAO's figures (AR too), by TAO's names.
    stats: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_stats(cls, stats: dict[str, float], **counts: Any) -> ApFigures:
        missing = set(STAT_NAMES) - set(stats)
        if missing:
            raise ValueError(f"pycocotools figures missing: {sorted(missing)}")
        ap, ap50, ap75, apm, apl = (float(stats[AP_NAMES[name]]) for name in AP_NAMES)
        return cls(ap, ap50, ap75, apm, apl, stats=dict(stats), **counts)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> ApFigures:
        """Back from `as_dict` (e.g. the export manifest's reference figures)."""
        return cls(
            float(record["AP"]), float(record["AP50"]), float(record["AP75"]),
            float(record["APm"]), float(record["APl"]),
            images=int(record["images"]),
            requested_images=record.get("requestedImages"),
            annotated_people=int(record.get("annotatedPeople", 0)),
            found_people=int(record.get("foundPeople", 0)),
            peak_candidates_capped=int(record.get("peakCandidatesCapped", 0)),
            notes=tuple(record.get("notes", ())),
        )  # fmt: skip

    def by_name(self) -> dict[str, float]:
        """{"AP": .., "AP50": .., "AP75": .., "APm": .., "APl": ..}, each 0..1 (or -1)."""
        return {"AP": self.ap, "AP50": self.ap50, "AP75": self.ap75, "APm": self.apm,
                "APl": self.apl}  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        """The manifest's and status's record: the five figures, the counts, the notes."""
        return {
            **self.by_name(),
            "images": self.images,
            "requestedImages": self.requested_images,
            "annotatedPeople": self.annotated_people,
            "foundPeople": self.found_people,
            "peakCandidatesCapped": self.peak_candidates_capped,
            "notes": list(self.notes),
        }
