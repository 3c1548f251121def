"""Recall measurement ignores the query's own id; the tuner stops at the first good step."""

from __future__ import annotations

import numpy as np

from shared.index.tuning import recall_at_k, tune


def test_recall_ignores_self_and_tune_picks_smallest_step() -> None:
    exact = np.asarray([[7, 1, 2, 3]])
    assert recall_at_k(np.asarray([[7, 1, 2, 9]]), exact, 3, np.asarray([7])) == 2 / 3
    assert recall_at_k(np.asarray([[1, 2, 3, -1]]), exact, 3, np.asarray([7])) == 1.0

    def search(q: np.ndarray, k: int, step: int) -> np.ndarray:
        return np.asarray([[7, 1, 2, 3] if step >= 4 else [7, 1, 8, 9]])

    assert tune(search, (1, 2, 4, 8), np.zeros((1, 2)), exact, np.asarray([7]), 0.9, 8) == (
        4,
        1.0,
    )
