"""Object rows for labelled boxes, and the detections' matches to them (one chunk's write)."""

from __future__ import annotations

import enum
from collections import defaultdict
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.annotations.matching import best_matches
from shared.db.models import DetectedObject, LabelClass, ObjectOrigin
from shared.db.upserts import insert_ignore


def label_code(label_class_id: int) -> int:
    """The ``class_id`` of a labelled box: ``-1 - label_class_id``, negative so that it is never
    a detector class. It lets the index's class filter (``SearchFilter.class_ids``) select
    label classes and origins without a column of its own."""
    return -1 - label_class_id


def label_names(session: Session) -> dict[int, str]:
    """Every label class by its ``class_id`` code (:func:`label_code`) → name."""
    return {
        label_code(int(i)): str(name)
        for i, name in session.execute(select(LabelClass.id, LabelClass.name))
    }


class BoxSource(enum.StrEnum):
    """Which boxes an ingestion makes objects of (its ``options["boxes"]``)."""

    LABELS = "labels"  # the annotation files' boxes only (the detector is not asked)
    DETECTIONS = "detections"  # the detector's only (annotation files are still checked)
    BOTH = "both"  # the default; an image without labels gets its detections


def label_object_rows(
    boxes: np.ndarray, names: list[str], vectors: np.ndarray, image_id: int, space_id: int
) -> list[dict[str, Any]]:
    """Rows of one image's labelled boxes: ``boxes`` float [M, 4] in original pixels,
    ``names`` their label classes, ``vectors`` float32 [M, D] pooled in the image's forward
    pass. The class name rides along as ``label`` until :func:`insert_with_labels`."""
    rows = []
    for j, (box, name, vec) in enumerate(zip(boxes, names, vectors, strict=True)):
        rows.append(
            {
                "image_id": image_id,
                "space_id": space_id,
                "ordinal": -1 - j,  # negative: never a detection's rank
                "x1": float(box[0]),
                "y1": float(box[1]),
                "x2": float(box[2]),
                "y2": float(box[3]),
                "class_id": -1,  # set from the label class: see label_code
                "class_name": name,
                "score": 1.0,
                "vector": np.ascontiguousarray(vec, dtype="<f4").tobytes(),
                "origin": ObjectOrigin.LABEL.value,
                "label": name,
            }
        )
    return rows


def label_class_ids(session: Session, names: set[str]) -> dict[str, int]:
    """Ids of these label classes, adding the new ones (race-free)."""
    if not names:
        return {}
    ordered = sorted(names)  # one global order: concurrent chunks never deadlock on PG
    insert_ignore(session, LabelClass.__table__, [{"name": n} for n in ordered])  # type: ignore[arg-type]
    rows = session.execute(
        select(LabelClass.name, LabelClass.id).where(LabelClass.name.in_(ordered))
    )
    return {str(name): int(i) for name, i in rows}


def insert_with_labels(
    session: Session, detections: list[dict[str, Any]], labelled: list[dict[str, Any]]
) -> None:
    """Insert the labelled rows, then the detections, each detection naming the labelled box
    of its image it matches (IoU >= 0.5). Idempotent like every object insert."""
    classes = label_class_ids(session, {str(r["label"]) for r in labelled})
    for r in labelled:
        r["label_class_id"] = classes[str(r.pop("label"))]
        r["class_id"] = label_code(r["label_class_id"])
    insert_ignore(session, DetectedObject.__table__, labelled)  # type: ignore[arg-type]
    by_image: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in labelled:
        by_image[int(r["image_id"])].append(r)
    if by_image:
        space_ids = {int(r["space_id"]) for r in labelled}
        ids = {
            (int(image), int(ordinal)): int(i)
            for image, ordinal, i in session.execute(
                select(DetectedObject.image_id, DetectedObject.ordinal, DetectedObject.id).where(
                    DetectedObject.image_id.in_(list(by_image)),
                    DetectedObject.space_id.in_(list(space_ids)),
                    DetectedObject.origin == ObjectOrigin.LABEL.value,
                )
            )
        }
        dets_by_image: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for d in detections:
            if int(d["image_id"]) in by_image:
                dets_by_image[int(d["image_id"])].append(d)
        for image, dets in dets_by_image.items():
            labels = by_image[image]
            found = best_matches(_boxes(dets), _boxes(labels))
            for d, match in zip(dets, found, strict=True):
                if match is not None:
                    d["label_match_id"] = ids[(image, int(labels[match[0]]["ordinal"]))]
                    d["label_match_iou"] = match[1]
    for d in detections:
        d.setdefault("origin", ObjectOrigin.DETECTION.value)
        d.setdefault("label_match_id", None)
        d.setdefault("label_match_iou", None)
    insert_ignore(session, DetectedObject.__table__, detections)  # type: ignore[arg-type]


def _boxes(rows: list[dict[str, Any]]) -> np.ndarray:
    return np.array([[r["x1"], r["y1"], r["x2"], r["y2"]] for r in rows], np.float64).reshape(-1, 4)
