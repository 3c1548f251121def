"""Labelled boxes in pixels, checked against their image, and detections matched to them."""

from __future__ import annotations

import numpy as np

from shared.annotations.model import ImageLabels

MATCH_IOU = 0.5
# Labelled boxes may overshoot the image by this many pixels (rounding in the tools that
# write them, VOC's 1-based corners) before they count as outside it; they are clipped.
EDGE_TOLERANCE_PX = 1.0


def pixel_boxes(labels: ImageLabels, width: int, height: int) -> np.ndarray | str:
    """float64 [M, 4] ``x1, y1, x2, y2`` in pixels of a ``width`` x ``height`` image, clipped
    to it; or why a box cannot be used (outside the image, or degenerate once clipped)."""
    if not labels.boxes:
        return np.zeros((0, 4), np.float64)
    boxes = np.array([[b.x1, b.y1, b.x2, b.y2] for b in labels.boxes], np.float64)
    if labels.normalized:
        boxes *= np.array([width, height, width, height], np.float64)
    limit = np.array([width, height, width, height], np.float64) + EDGE_TOLERANCE_PX
    for n, box in enumerate(boxes, start=1):
        if (box < -EDGE_TOLERANCE_PX).any() or (box > limit).any():
            shown = ", ".join(f"{v:.1f}" for v in box)
            return (
                f"labelled box {n} of {labels.file} ({shown}) lies outside "
                f"the {width}x{height} image"
            )
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
    for n, box in enumerate(boxes, start=1):
        if box[2] <= box[0] or box[3] <= box[1]:
            return f"labelled box {n} of {labels.file} is degenerate inside the image"
    return boxes


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` [N, 4] with every box of ``b`` [M, 4] (x1y1x2y2) → [N, M]."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)), np.float64)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = (x2 - x1).clip(0) * (y2 - y1).clip(0)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def best_matches(
    detections: np.ndarray, labelled: np.ndarray, threshold: float = MATCH_IOU
) -> list[tuple[int, float] | None]:
    """For each detection, the labelled box it overlaps most, with that IoU, when the IoU is
    at least ``threshold`` (several detections may name one labelled box)."""
    ious = iou_matrix(detections, labelled)
    out: list[tuple[int, float] | None] = []
    for row in ious:
        j = int(row.argmax()) if len(row) else -1
        out.append((j, float(row[j])) if j >= 0 and row[j] >= threshold else None)
    return out
