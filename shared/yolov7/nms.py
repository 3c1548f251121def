"""Greedy non-maximum suppression in numpy (no torchvision).

Semantics of torchvision's ``nms`` as used by the official post-processing: visit boxes in
descending score; drop every later box whose IoU with a kept box is **> iou_threshold**;
areas ``(x2 − x1)(y2 − y1)`` without +1; float32 arithmetic. Cost is one vectorised IoU row
per kept box, so it stays fast with thousands of candidates (see bench/engine.py).
"""

from __future__ import annotations

import numpy as np

MATRIX_LIMIT = 2048  # up to this many boxes: one IoU matrix (≤ 4 M entries), bool-row loop


def _greedy_matrix(
    boxes: np.ndarray, areas: np.ndarray, thr: np.float32, order: np.ndarray
) -> np.ndarray:
    """Same decisions as the row-by-row loop, from one IoU matrix of the score-sorted boxes."""
    x1, y1, x2, y2 = (boxes[:, k] for k in range(4))
    w = np.maximum(np.float32(0), np.minimum(x2[:, None], x2) - np.maximum(x1[:, None], x1))
    h = np.maximum(np.float32(0), np.minimum(y2[:, None], y2) - np.maximum(y1[:, None], y1))
    inter = w * h
    with np.errstate(divide="ignore", invalid="ignore"):
        suppress = inter / (areas[:, None] + areas - inter) > thr
    # Resolve the greedy decisions in vectorised rounds instead of one Python step per box:
    # an undecided box none of whose not-removed predecessors suppresses it is certainly kept
    # (whatever they turn out to be), and everything a kept box suppresses is removed. The
    # first undecided box always qualifies, so every round makes progress; the number of
    # rounds is the length of the longest suppression chain (a handful in practice).
    suppress = np.triu(suppress, 1)
    n = len(boxes)
    undecided = np.ones(n, dtype=bool)
    removed = np.zeros(n, dtype=bool)
    while undecided.any():
        blocked = suppress[~removed].any(0)
        newly_kept = undecided & ~blocked
        undecided &= ~newly_kept
        hit = suppress[newly_kept].any(0) & undecided
        removed |= hit
        undecided &= ~hit
    keep = np.flatnonzero(~removed)
    return order[keep]


def greedy_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """boxes float32 [N, 4] x1y1x2y2, scores [N] → int64 indices kept, descending score."""
    n = boxes.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    boxes = boxes.astype(np.float32, copy=False)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = (x2 - x1) * (y2 - y1)
    order = np.argsort(-scores, kind="stable")
    thr = np.float32(iou_threshold)
    if n <= MATRIX_LIMIT:
        return _greedy_matrix(boxes[order], areas[order], thr, order)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        if rest.size == 0:
            break
        w = np.maximum(np.float32(0), np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(np.float32(0), np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 → NaN → kept, like torch
            iou = inter / (areas[i] + areas[rest] - inter)
        order = rest[~(iou > thr)]
    return np.asarray(keep, dtype=np.int64)


def batched_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray,
    iou_threshold: float,
    class_offset: float = 4096.0,
) -> np.ndarray:
    """Class-aware NMS by shifting each class's boxes by ``class × class_offset`` (float32).

    The coordinates are shifted exactly like the official code (the float32 offset coarsens
    high class indices slightly; kept for parity), but since shifted boxes of different
    classes never overlap, the greedy pass runs per class — the same result at a fraction of
    the cost when many boxes survive. Returns indices in descending-score order.
    """
    if boxes.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    shifted = (
        boxes.astype(np.float32) + (classes.astype(np.float32) * np.float32(class_offset))[:, None]
    )
    if boxes.shape[0] <= MATRIX_LIMIT:  # shifted classes never overlap: one matrix for all
        return greedy_nms(shifted, scores, iou_threshold)
    kept: list[np.ndarray] = []
    for c in np.unique(classes):
        members = np.flatnonzero(classes == c)
        kept.append(members[greedy_nms(shifted[members], scores[members], iou_threshold)])
    keep = np.concatenate(kept)
    return keep[np.argsort(-scores[keep], kind="stable")]
