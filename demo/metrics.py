"""Detection mAP and nearest-neighbour retrieval scores (pure numpy).

Detection: per class and IoU threshold, predictions of all images are ranked by score; a
prediction is a true positive when it overlaps a not-yet-matched ground-truth box of its
class by IoU ≥ t in its image (the best-overlapping such box is taken), otherwise a false
positive. AP is the area under the precision envelope (precision made monotone from the
right, integrated over every recall step — "all-point" interpolation). mAP averages the
classes that have ground truth; mAP@0.5:0.95 also averages t = 0.50, 0.55, …, 0.95.

Retrieval: every item queries all the others by cosine similarity; an answer is relevant
when it has the query's label. precision@k and average precision per query, then means.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

COCO_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a [N, 4], b [M, 4] x1y1x2y2 → IoU [N, M] (0 where a box has no area)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(-1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the monotone precision envelope; recall ascending, same length."""
    r = np.concatenate([[0.0], recall, [recall[-1] if len(recall) else 0.0]])
    p = np.concatenate([[1.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.flatnonzero(r[1:] != r[:-1])
    return float(((r[steps + 1] - r[steps]) * p[steps + 1]).sum())


@dataclass
class ImageDetections:
    """Predictions of one image: boxes float [N, 4] x1y1x2y2, scores [N], classes int [N]."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray


@dataclass
class ImageTruth:
    """Ground truth of one image: boxes float [M, 4] x1y1x2y2, classes int [M]."""

    boxes: np.ndarray
    classes: np.ndarray


@dataclass
class DetectionScores:
    """ap [nc, T] (NaN for classes without ground truth), thresholds [T]."""

    ap: np.ndarray
    thresholds: tuple[float, ...]
    gt_per_class: list[int] = field(default_factory=list)

    def _mean(self, column: slice | int) -> float:
        values = self.ap[:, column]
        valid = ~np.isnan(values)
        return float(values[valid].mean()) if valid.any() else float("nan")

    @property
    def map50(self) -> float:
        return self._mean(self.thresholds.index(0.5))

    @property
    def map50_95(self) -> float:
        rows = self.ap[~np.isnan(self.ap[:, 0])]
        return float(rows.mean()) if rows.size else float("nan")

    def class_ap50(self) -> list[float]:
        return [float(v) for v in self.ap[:, self.thresholds.index(0.5)]]


def _match_image(
    pred: ImageDetections, truth: ImageTruth, cls: int, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Scores [n] and TP flags [n, T] of one image's predictions of class ``cls``."""
    p_mask = pred.classes == cls
    scores = np.asarray(pred.scores, np.float64)[p_mask]
    order = np.argsort(-scores, kind="stable")
    scores = scores[order]
    boxes = np.asarray(pred.boxes).reshape(-1, 4)[p_mask][order]
    gt = np.asarray(truth.boxes).reshape(-1, 4)[truth.classes == cls]
    tp = np.zeros((len(scores), len(thresholds)), bool)
    if len(scores) == 0 or len(gt) == 0:
        return scores, tp
    iou = box_iou(boxes, gt)
    for t, thr in enumerate(thresholds):
        taken = np.zeros(len(gt), bool)
        for i in range(len(scores)):
            candidates = np.where(taken, -1.0, iou[i])
            j = int(candidates.argmax())
            if candidates[j] >= thr:
                taken[j] = True
                tp[i, t] = True
    return scores, tp


def detection_scores(
    predictions: list[ImageDetections],
    truths: list[ImageTruth],
    num_classes: int,
    thresholds: tuple[float, ...] = COCO_THRESHOLDS,
) -> DetectionScores:
    """Per-class AP at each IoU threshold over a set of images (see the module docstring)."""
    if len(predictions) != len(truths):
        raise ValueError(f"{len(predictions)} prediction sets for {len(truths)} images")
    thr = np.asarray(thresholds, np.float64)
    ap = np.full((num_classes, len(thr)), np.nan)
    counts = []
    for cls in range(num_classes):
        n_gt = sum(int((t.classes == cls).sum()) for t in truths)
        counts.append(n_gt)
        parts = [_match_image(p, t, cls, thr) for p, t in zip(predictions, truths, strict=True)]
        scores = np.concatenate([s for s, _ in parts]) if parts else np.zeros(0)
        tps = np.concatenate([f for _, f in parts]) if parts else np.zeros((0, len(thr)), bool)
        if n_gt == 0:
            continue
        order = np.argsort(-scores, kind="stable")
        tps = tps[order]
        for t in range(len(thr)):
            tp_cum = np.cumsum(tps[:, t])
            fp_cum = np.cumsum(~tps[:, t])
            recall = tp_cum / n_gt
            precision = tp_cum / np.maximum(tp_cum + fp_cum, 1)
            ap[cls, t] = average_precision(recall, precision) if len(tp_cum) else 0.0
    return DetectionScores(ap, tuple(float(v) for v in thresholds), counts)


@dataclass
class RetrievalScores:
    precision_at_k: float
    mean_ap: float
    queries: int


def retrieval_scores(vectors: np.ndarray, labels: np.ndarray, k: int = 10) -> RetrievalScores:
    """vectors float [N, D] (any norm; cosine similarity is used), labels int [N]: every item
    queries the other N − 1 → mean precision@k and mean average precision."""
    v = np.asarray(vectors, np.float64)
    v = np.nan_to_num(v)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    v = np.divide(v, norms, out=np.zeros_like(v), where=norms > 0)
    labels = np.asarray(labels)
    n = len(v)
    if n < 2:
        return RetrievalScores(float("nan"), float("nan"), n)
    sim = v @ v.T
    np.fill_diagonal(sim, -np.inf)
    order = np.argsort(-sim, axis=1, kind="stable")[:, : n - 1]
    relevant = labels[order] == labels[:, None]
    kk = min(k, n - 1)
    p_at_k = relevant[:, :kk].mean(1)
    hits = np.cumsum(relevant, 1)
    ranks = np.arange(1, n, dtype=np.float64)
    totals = relevant.sum(1)
    ap = np.where(totals > 0, (relevant * hits / ranks).sum(1) / np.maximum(totals, 1), np.nan)
    valid = totals > 0
    return RetrievalScores(
        float(p_at_k[valid].mean()) if valid.any() else float("nan"),
        float(ap[valid].mean()) if valid.any() else float("nan"),
        int(valid.sum()),
    )
