"""Evaluate the stored detections of a collection's labelled images against their labels.

Labelled images: those whose ingestion item carried labels (an empty label file counts: an
image with no objects). A detector class is compared with the label class of the same name;
classes on one side only are listed (their AP is 0 when labels exist, they add nothing
otherwise). Detections are those stored, i.e. above the detector's confidence threshold
(``ROISEARCH_CONF_THRESHOLD``), which bounds the recall the curves can reach.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.db.models import DetectedObject, IngestionItem, ObjectOrigin
from shared.evaluation.average_precision import (
    IOU_THRESHOLDS,
    average_precision,
    greedy_match,
    pr_curve,
)


class EvaluationError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class _Side:
    ids: list[int]
    boxes: list[list[float]]
    scores: list[float]


def _load(session: Session, space_id: int | None) -> tuple[int, list[int], list[Any]]:
    images = sorted(
        {
            int(i)
            for i in session.scalars(
                select(IngestionItem.image_id).where(
                    IngestionItem.labels.is_not(None), IngestionItem.image_id.is_not(None)
                )
            )
            if i is not None
        }
    )
    if not images:
        raise EvaluationError("no_labelled_images", "no image of the collection has labels")
    spaces = sorted(
        {
            int(s)
            for s in session.scalars(
                select(DetectedObject.space_id).where(DetectedObject.image_id.in_(images))
            )
        }
    )
    if space_id is None:
        if len(spaces) > 1:
            raise EvaluationError(
                "space_required", f"labelled images are in {len(spaces)} spaces: choose one"
            )
        space_id = spaces[0] if spaces else 0
    rows = session.execute(
        select(
            DetectedObject.id,
            DetectedObject.image_id,
            DetectedObject.origin,
            DetectedObject.class_name,
            DetectedObject.score,
            DetectedObject.x1,
            DetectedObject.y1,
            DetectedObject.x2,
            DetectedObject.y2,
        ).where(DetectedObject.space_id == space_id, DetectedObject.image_id.in_(images))
    ).all()
    return space_id, images, list(rows)


def evaluate(session: Session, space_id: int | None = None) -> dict[str, Any]:
    """The evaluation as a JSON-ready document (see docs/labels.md#detector-against-labels)."""
    space_id, images, rows = _load(session, space_id)
    # (class, image) → detections / truths
    dets: dict[tuple[str, int], _Side] = defaultdict(lambda: _Side([], [], []))
    truths: dict[tuple[str, int], _Side] = defaultdict(lambda: _Side([], [], []))
    for r in rows:
        side = truths if r.origin == ObjectOrigin.LABEL else dets
        entry = side[(str(r.class_name), int(r.image_id))]
        entry.ids.append(int(r.id))
        entry.boxes.append([r.x1, r.y1, r.x2, r.y2])
        entry.scores.append(float(r.score))
    label_classes = sorted({c for c, _ in truths})
    detector_only = sorted({c for c, _ in dets} - set(label_classes))
    classes = [_class_result(c, dets, truths) for c in label_classes]
    return {
        "space_id": space_id,
        "images": len(images),
        "iou_thresholds": list(IOU_THRESHOLDS),
        "map50": _mean([c["ap50"] for c in classes]),
        "map50_95": _mean([c["ap50_95"] for c in classes]),
        "classes": classes,
        "detector_classes_without_labels": detector_only,
    }


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _class_result(
    name: str, dets: dict[tuple[str, int], _Side], truths: dict[tuple[str, int], _Side]
) -> dict[str, Any]:
    keys = sorted({k for k in (*dets, *truths) if k[0] == name})
    n_truths = sum(len(truths[k].ids) for k in keys if k in truths)
    aps: list[float] = []
    matches: list[dict[str, Any]] = []
    curve: dict[str, list[float]] = {"recall": [], "precision": []}
    for threshold in IOU_THRESHOLDS:
        scores: list[float] = []
        hits: list[bool] = []
        for key in keys:
            d = dets.get(key) or _Side([], [], [])
            t = truths.get(key) or _Side([], [], [])
            found, ious = greedy_match(
                np.array(d.boxes, np.float64).reshape(-1, 4),
                np.array(d.scores, np.float64),
                np.array(t.boxes, np.float64).reshape(-1, 4),
                threshold,
            )
            scores += d.scores
            hits += [bool(j >= 0) for j in found.tolist()]
            if threshold == IOU_THRESHOLDS[0]:
                matches += [
                    {
                        "detection_id": det_id,
                        "label_id": t.ids[j] if j >= 0 else None,
                        "iou": round(float(iou), 4),
                        "score": round(score, 4),
                    }
                    for det_id, j, iou, score in zip(
                        d.ids, found.tolist(), ious.tolist(), d.scores, strict=True
                    )
                ]
        s, h = np.array(scores, np.float64), np.array(hits, bool)
        aps.append(average_precision(s, h, n_truths))
        if threshold == IOU_THRESHOLDS[0] and len(s):
            precision, recall = pr_curve(s, h, n_truths)
            curve = {
                "recall": [round(float(v), 4) for v in recall],
                "precision": [round(float(v), 4) for v in precision],
            }
    return {
        "class": name,
        "ground_truth": n_truths,
        "detections": sum(len(dets[k].ids) for k in keys if k in dets),
        "ap50": aps[0],
        "ap50_95": float(np.mean(aps)),
        "pr_curve": curve,
        "matches": matches,
    }
