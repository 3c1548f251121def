"""Greedy matching and COCO 101-point AP on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from shared.evaluation.average_precision import average_precision, greedy_match, pr_curve

TRUTHS = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float64)


def test_each_truth_is_matched_once_best_score_first() -> None:
    dets = np.array([[0, 0, 10, 10], [0, 0, 10, 9], [20, 20, 30, 30], [50, 50, 60, 60]], float)
    scores = np.array([0.6, 0.9, 0.8, 0.95])
    found, ious = greedy_match(dets, scores, TRUTHS, 0.5)
    # the 0.9 detection takes truth 0 first; the 0.6 one finds it taken
    assert found.tolist() == [-1, 0, 1, -1]
    assert ious[1] == pytest.approx(0.9) and ious[0] == 0


def test_perfect_detections_have_ap_one_and_misses_lower_it() -> None:
    assert average_precision(np.array([0.9, 0.8]), np.array([True, True]), 2) == 1.0
    # one of two found: recall stops at 0.5, AP ≈ half of the recall points
    half = average_precision(np.array([0.9]), np.array([True]), 2)
    assert half == pytest.approx(51 / 101)
    # a false positive ranked first halves the precision at every recall
    assert average_precision(np.array([0.9, 0.8]), np.array([False, True]), 1) == pytest.approx(0.5)
    assert average_precision(np.array([]), np.array([], bool), 3) == 0.0
    assert average_precision(np.array([0.5]), np.array([False]), 0) == 0.0


def test_pr_curve_by_descending_score() -> None:
    precision, recall = pr_curve(np.array([0.2, 0.9, 0.5]), np.array([True, True, False]), 4)
    np.testing.assert_allclose(recall, [0.25, 0.25, 0.5])
    np.testing.assert_allclose(precision, [1.0, 0.5, 2 / 3])
