"""Origin and label-class filters as the index's class filter (``SearchFilter.class_ids``).

A labelled box's ``class_id`` is the negative code of its label class (``-1 -
label_class_id``), so one list of class ids selects detector classes, label classes, or both:

- no ``origin``: ``classes`` keeps those detections, ``label_classes`` those labelled boxes
  (both given: either); neither: no restriction;
- ``origin=detection``: detections only (of ``classes`` if given; ``label_classes`` ignored);
- ``origin=label``: labelled boxes only (of ``label_classes`` if given; ``classes`` ignored).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

DETECTION, LABEL = "detection", "label"


class UnknownLabelClassError(ValueError):
    def __init__(self, unknown: list[str], known: list[str]) -> None:
        shown = ", ".join(known[:50]) or "none: no labelled dataset was ingested"
        super().__init__(f"unknown label class(es) {', '.join(unknown[:20])}; known: {shown}")
        self.unknown = unknown
        self.known = known


def label_codes(labels: Mapping[int, str], wanted: Sequence[str]) -> list[int]:
    """The class-id codes of the label classes named ``wanted`` (``labels``: code → name)."""
    by_name = {name: code for code, name in labels.items()}
    unknown = [w for w in wanted if w not in by_name]
    if unknown:
        raise UnknownLabelClassError(unknown, sorted(by_name))
    return sorted({by_name[w] for w in wanted})


def class_filter(
    detector_ids: Sequence[int] | None,
    detector_classes: int,
    origin: str | None,
    label_ids: Sequence[int] | None,
    all_labels: Sequence[int],
) -> list[int] | None:
    """The class ids to keep (None: every object). ``detector_ids``: the resolved ``classes``
    (None: not given); ``label_ids``: the codes of ``label_classes`` (None: not given)."""
    if origin is None and detector_ids is None and label_ids is None:
        return None
    wants_detections = origin == DETECTION or (origin is None and detector_ids is not None)
    wants_labels = origin == LABEL or (origin is None and label_ids is not None)
    keep: list[int] = []
    if wants_detections:
        keep += list(detector_ids) if detector_ids is not None else list(range(detector_classes))
    if wants_labels:
        keep += list(label_ids) if label_ids is not None else list(all_labels)
    return keep
