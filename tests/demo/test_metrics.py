"""mAP and retrieval scores on hand-made cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from demo.metrics import (
    ImageDetections,
    ImageTruth,
    average_precision,
    box_iou,
    detection_scores,
    retrieval_scores,
)


def det(boxes: list[list[float]], scores: list[float], classes: list[int]) -> ImageDetections:
    return ImageDetections(
        np.array(boxes, float).reshape(-1, 4), np.array(scores), np.array(classes)
    )


def gt(boxes: list[list[float]], classes: list[int]) -> ImageTruth:
    return ImageTruth(np.array(boxes, float).reshape(-1, 4), np.array(classes))


def test_box_iou() -> None:
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [3, 3, 3, 3]])
    assert box_iou(a, b)[0].tolist() == pytest.approx([1.0, 1 / 3, 0.0, 0.0])


def test_average_precision_of_simple_curves() -> None:
    assert average_precision(np.array([0.5, 1.0]), np.array([1.0, 1.0])) == pytest.approx(1.0)
    # FP first, then the only TP: precision 0.5 at recall 1
    assert average_precision(np.array([0.0, 1.0]), np.array([0.0, 0.5])) == pytest.approx(0.5)
    # TP, FP, TP over 2 GT: 0.5·1 + 0.5·(2/3)
    ap = average_precision(np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3]))
    assert ap == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_perfect_detections_score_one_at_every_threshold() -> None:
    truths = [gt([[0, 0, 10, 10], [20, 20, 40, 30]], [0, 1]), gt([[5, 5, 9, 9]], [1])]
    preds = [
        det([[0, 0, 10, 10], [20, 20, 40, 30]], [0.9, 0.8], [0, 1]),
        det([[5, 5, 9, 9]], [0.7], [1]),
    ]
    scores = detection_scores(preds, truths, num_classes=3)
    assert scores.map50 == pytest.approx(1.0)
    assert scores.map50_95 == pytest.approx(1.0)
    assert math.isnan(scores.ap[2, 0])  # class 2 has no ground truth: left out of the mean
    assert scores.gt_per_class == [1, 2, 0]


def test_false_positive_ranked_first_halves_ap() -> None:
    truths = [gt([[0, 0, 10, 10]], [0])]
    preds = [det([[50, 50, 60, 60], [0, 0, 10, 10]], [0.9, 0.5], [0, 0])]
    assert detection_scores(preds, truths, 1).map50 == pytest.approx(0.5)


def test_duplicate_detection_is_a_false_positive_after_the_match() -> None:
    truths = [gt([[0, 0, 10, 10], [30, 30, 40, 40]], [0, 0])]
    preds = [det([[0, 0, 10, 10], [0, 0, 10, 10.5], [30, 30, 40, 40]], [0.9, 0.8, 0.7], [0, 0, 0])]
    # TP, FP, TP: recall 0.5 at precision 1, recall 1 at precision 2/3
    assert detection_scores(preds, truths, 1).map50 == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_wrong_class_does_not_count() -> None:
    truths = [gt([[0, 0, 10, 10]], [0])]
    preds = [det([[0, 0, 10, 10]], [0.9], [1])]
    scores = detection_scores(preds, truths, 2)
    assert scores.ap[0, 0] == 0.0 and math.isnan(scores.ap[1, 0])
    assert scores.map50 == 0.0


def test_iou_thresholds_of_map50_95() -> None:
    truths = [gt([[0, 0, 10, 10]], [0])]
    preds = [det([[0, 0, 10, 6.2]], [0.9], [0])]  # IoU 0.62: a hit at 0.50..0.60 only
    scores = detection_scores(preds, truths, 1)
    assert scores.map50 == 1.0
    assert scores.map50_95 == pytest.approx(3 / 10)


def test_missed_objects_lower_recall() -> None:
    truths = [gt([[0, 0, 10, 10]], [0]), gt([[0, 0, 10, 10]], [0])]
    preds = [det([[0, 0, 10, 10]], [0.9], [0]), det([], [], [])]
    assert detection_scores(preds, truths, 1).map50 == pytest.approx(0.5)


def test_retrieval_of_perfect_clusters() -> None:
    v = np.array([[1, 0], [0.9, 0.1], [1, 0.05], [0, 1], [0.1, 0.9], [0.02, 1]], float)
    labels = np.array([0, 0, 0, 1, 1, 1])
    s = retrieval_scores(v, labels, k=2)
    assert s.precision_at_k == 1.0 and s.mean_ap == 1.0 and s.queries == 6


def test_retrieval_of_interleaved_ranking() -> None:
    v = np.array([[1.0, 0.0], [0.99, 0.14], [0.9, 0.44], [0.8, 0.6]])
    labels = np.array([0, 0, 1, 0])
    s = retrieval_scores(v, labels, k=2)
    # query 0 ranks 1 (hit), 2 (miss), 3 (hit): AP (1 + 2/3) / 2; query 1 likewise;
    # query 3 ranks 2 (miss), 1 (hit), 0 (hit): AP (1/2 + 2/3) / 2; query 2 has no relevant
    # item and is left out. precision@2 is 1/2 for all three.
    assert s.queries == 3
    assert s.precision_at_k == pytest.approx(0.5)
    assert s.mean_ap == pytest.approx(((1 + 2 / 3) / 2 * 2 + (0.5 + 2 / 3) / 2) / 3)


def test_retrieval_treats_nan_vectors_as_uninformative() -> None:
    v = np.array([[1, 0], [1, 0], [np.nan, np.nan], [0, 1]], float)
    s = retrieval_scores(v, np.array([0, 0, 0, 1]), k=1)
    assert np.isfinite(s.precision_at_k) and np.isfinite(s.mean_ap)
