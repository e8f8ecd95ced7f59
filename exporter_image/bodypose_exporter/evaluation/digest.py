"""What an evaluation set is, in two digests: its annotations and its images.

An AP drop compares two evaluations, so both must be of the same set. The
image and people counts cannot tell two sets apart (another split of the
same size, a re-annotated copy, other pictures under the same file names),
so an export records the digests of the set it measured the FP32 model on
(`evaluation.json`, `stages.evaluation_step`) and a build compares its own set's
before any inference on it.

- `annotations`: SHA-256 of the evaluated part of the COCO file (after
  `maxImages`): its `images` entries by id, their `annotations` by (image id,
  id) and the `categories`, as canonical JSON (sorted keys, no spaces), so
  the same content reads the same whatever the file's layout or key order;
- `images`: SHA-256 over each evaluated image, in id order, of its
  `file_name` and the SHA-256 of its bytes, so a renamed or replaced picture
  changes it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from bodypose_exporter.evaluation.dataset import EvaluationSet, EvaluationSetError

_CHUNK = 1 << 20
#: How many hex digits a message shows of each digest.
SHOWN = 12


@dataclass(frozen=True)
class SetDigest:
    annotations: str  # hex SHA-256 of the evaluated annotations (canonical JSON)
    images: str  # hex SHA-256 of the evaluated images' names and contents

    def as_dict(self) -> dict[str, str]:
        return {"annotations": self.annotations, "images": self.images}

    @classmethod
    def from_record(cls, record: Any) -> SetDigest:
        """Back from `as_dict`; ValueError when it is not two SHA-256 hex digests."""
        if not isinstance(record, dict):
            raise ValueError(f"setDigest is {type(record).__name__}, expected an object")
        values: list[str] = []
        for value in (record.get("annotations"), record.get("images")):
            if not (isinstance(value, str) and len(value) == 64 and _is_hex(value)):
                raise ValueError(f"setDigest value {value!r} is not a SHA-256 hex digest")
            values.append(value)
        return cls(*values)

    def differences(self, other: SetDigest) -> list[str]:
        """What differs from `other`: "annotations", "images", both or neither."""
        return [
            name
            for name, mine, theirs in (
                ("annotations", self.annotations, other.annotations),
                ("images", self.images, other.images),
            )
            if mine != theirs
        ]

    def short(self) -> str:
        return f"annotations {self.annotations[:SHOWN]}, images {self.images[:SHOWN]}"


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


def annotations_digest(dataset: dict[str, Any]) -> str:
    evaluated = {
        "images": sorted(dataset["images"], key=lambda image: image["id"]),
        "annotations": sorted(
            dataset["annotations"], key=lambda a: (a["image_id"], a.get("id", 0))
        ),
        "categories": dataset.get("categories", []),
    }
    text = json.dumps(evaluated, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def set_digest(evaluation_set: EvaluationSet) -> SetDigest:
    """The set's two digests (reads every evaluated image once, from local disk)."""
    images = hashlib.sha256()
    for image in sorted(evaluation_set.dataset["images"], key=lambda i: i["id"]):
        name = str(image["file_name"])
        content = hashlib.sha256()
        try:
            with (evaluation_set.images_dir / name).open("rb") as f:
                while chunk := f.read(_CHUNK):
                    content.update(chunk)
        except OSError as exc:
            raise EvaluationSetError(f"evaluation image {name}: {exc}") from exc
        images.update(f"{name}\0{content.hexdigest()}\n".encode())
    return SetDigest(annotations_digest(evaluation_set.dataset), images.hexdigest())
