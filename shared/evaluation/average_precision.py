"""Matching detections to labelled boxes and COCO-style average precision (pure numpy).

Per image and class, detections are taken by descending score and each one matched to the
unmatched labelled box it overlaps most, when that IoU reaches the threshold (each labelled
box matched once). AP is the area under the precision-recall curve with precision made
monotone and sampled at 101 recall points (COCO's definition).
"""

from __future__ import annotations

import numpy as np

from shared.annotations.matching import iou_matrix

IOU_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))  # 0.50 … 0.95
RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def greedy_match(
    detections: np.ndarray, scores: np.ndarray, truths: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """One image, one class: ``detections`` float [N, 4], ``scores`` [N], ``truths`` [M, 4].
    Returns (int [N] index of the matched truth or -1, float [N] its IoU or 0)."""
    matched = np.full(len(detections), -1, np.int64)
    ious_out = np.zeros(len(detections), np.float64)
    if not len(detections) or not len(truths):
        return matched, ious_out
    ious = iou_matrix(detections, truths)
    taken = np.zeros(len(truths), bool)
    for i in np.argsort(-scores, kind="stable"):
        row = np.where(taken, -1.0, ious[i])
        j = int(row.argmax())
        if row[j] >= threshold:
            taken[j] = True
            matched[i], ious_out[i] = j, row[j]
    return matched, ious_out


def pr_curve(scores: np.ndarray, hits: np.ndarray, truths: int) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall after each detection, by descending score ([N] each)."""
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(hits[order].astype(np.float64))
    fp = np.cumsum((~hits[order]).astype(np.float64))
    recall = tp / truths if truths else np.zeros_like(tp)
    precision = tp / np.maximum(tp + fp, 1e-12)
    return precision, recall


def average_precision(scores: np.ndarray, hits: np.ndarray, truths: int) -> float:
    """COCO 101-point AP; 0 when there is nothing to find or nothing found."""
    if truths == 0 or not len(scores):
        return 0.0
    precision, recall = pr_curve(scores, hits, truths)
    # Monotone envelope: the best precision at this recall or any higher one.
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    at = np.searchsorted(recall, RECALL_POINTS, side="left")
    sampled = np.where(at < len(envelope), envelope[np.minimum(at, len(envelope) - 1)], 0.0)
    return float(sampled.mean())
