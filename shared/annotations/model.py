"""The neutral form every annotation format is parsed into, and the errors it reports.

Boxes are ``x1, y1, x2, y2``: in original-image pixels, or in fractions of the image's
width and height when ``normalized`` (YOLO), resolved once the image's size is known.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

# Stable codes of annotation files that cannot be used (the file's item fails with one).
INVALID = "annotation_invalid"  # not parseable as its format
AMBIGUOUS = "annotation_ambiguous"  # names an image several members could be, or relabels one
UNMATCHED = "annotation_unmatched"  # labels no image of the source
# Stable code of an image whose labelled box is degenerate or outside the image.
BOX_INVALID = "label_box_invalid"


class AnnotationError(Exception):
    """An annotation file cannot be used; ``code`` is one of the codes above."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class LabelBox:
    """One labelled box; ``label``: the class name in the dataset's own vocabulary."""

    x1: float
    y1: float
    x2: float
    y2: float
    label: str

    def problem(self) -> str | None:
        """Why the box cannot be used whatever the image (None when it can)."""
        values = (self.x1, self.y1, self.x2, self.y2)
        if not all(math.isfinite(v) for v in values):
            return "has a coordinate that is not a finite number"
        if self.x2 <= self.x1 or self.y2 <= self.y1:
            return "is degenerate (zero or negative width or height)"
        return None


@dataclass
class ImageLabels:
    """The labelled boxes of one image, as one annotation file gives them."""

    file: str  # the annotation file's member name
    format: str  # coco | yolo | voc
    normalized: bool
    boxes: list[LabelBox] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """What an ingestion item stores (``ingestion_items.labels``)."""
        return {
            "file": self.file,
            "format": self.format,
            "normalized": self.normalized,
            "boxes": [[b.x1, b.y1, b.x2, b.y2, b.label] for b in self.boxes],
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ImageLabels:
        boxes = [
            LabelBox(float(x1), float(y1), float(x2), float(y2), str(label))
            for x1, y1, x2, y2, label in doc["boxes"]
        ]
        return cls(str(doc["file"]), str(doc["format"]), bool(doc["normalized"]), boxes)
