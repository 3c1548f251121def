"""Greedy NMS semantics and the equivalence of its two code paths."""

from __future__ import annotations

import numpy as np
import pytest

from shared.yolov7 import nms


def test_suppresses_only_above_threshold() -> None:
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 15], [0, 5, 10, 15], [20, 20, 30, 30]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    # IoU(0,1) = 100/150 = 0.667 > 0.5 → dropped; IoU(0,2) = 50/150 = 0.333 → kept
    assert nms.greedy_nms(boxes, scores, 0.5).tolist() == [0, 2, 3]
    # IoU exactly at the threshold is kept (strict >)
    assert nms.greedy_nms(boxes[[0, 2]], scores[[0, 2]], 1 / 3).tolist() == [0, 1]


def test_class_aware() -> None:
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], np.float32)
    scores = np.array([0.5, 0.9], np.float32)
    assert nms.batched_nms(boxes, scores, np.array([0, 1]), 0.45).tolist() == [1, 0]
    assert nms.batched_nms(boxes, scores, np.array([2, 2]), 0.45).tolist() == [1]
    assert nms.batched_nms(np.zeros((0, 4), np.float32), np.zeros(0), np.zeros(0), 0.5).size == 0


@pytest.mark.parametrize("n", [40, 700, 2500])
def test_matrix_path_equals_loop(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    rng = np.random.default_rng(n)
    xy = rng.uniform(0, 300, (n, 2)).astype(np.float32)
    boxes = np.concatenate([xy, xy + rng.uniform(0, 120, (n, 2)).astype(np.float32)], 1)
    scores = rng.uniform(0.25, 1, n).astype(np.float32)
    fast = nms.greedy_nms(boxes, scores, 0.45)
    monkeypatch.setattr(nms, "MATRIX_LIMIT", 0)
    assert np.array_equal(fast, nms.greedy_nms(boxes, scores, 0.45))
