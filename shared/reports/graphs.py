"""Connected components of an undirected graph given as edge arrays (vectorised, no recursion)."""

from __future__ import annotations

import numpy as np


def connected_components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """int64 [n] component label of each node (the smallest node index in its component).

    ``left``/``right``: int [e] node indices of the edges. Min-label propagation with pointer
    jumping: each round every edge pulls both ends to the smaller label, then labels follow
    their own label; it ends when nothing changes (rounds grow with the log of the diameter).
    """
    labels = np.arange(n, dtype=np.int64)
    if left.size == 0:
        return labels
    left = left.astype(np.int64, copy=False)
    right = right.astype(np.int64, copy=False)
    while True:
        updated = labels.copy()
        np.minimum.at(updated, left, labels[right])
        np.minimum.at(updated, right, labels[left])
        while True:
            jumped = updated[updated]
            if np.array_equal(jumped, updated):
                break
            updated = jumped
        if np.array_equal(updated, labels):
            return labels
        labels = updated
