"""Connected components by label propagation."""

from __future__ import annotations

import numpy as np

from shared.reports.graphs import connected_components


def test_components_of_chains_and_singletons() -> None:
    # 0-1-2-3 is a chain (long diameter), 5-7, and 4, 6 alone.
    left = np.array([3, 2, 1, 7])
    right = np.array([2, 1, 0, 5])
    labels = connected_components(8, left, right)
    assert labels.tolist() == [0, 0, 0, 0, 4, 5, 6, 5]


def test_no_edges_and_random_graph_against_union_find() -> None:
    assert connected_components(
        3, np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    ).tolist() == [0, 1, 2]
    rng = np.random.default_rng(0)
    n = 500
    left, right = rng.integers(0, n, 300), rng.integers(0, n, 300)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in zip(left.tolist(), right.tolist(), strict=True):
        ra, rb = find(a), find(b)
        parent[max(ra, rb)] = min(ra, rb)
    expected = [find(i) for i in range(n)]
    assert connected_components(n, left, right).tolist() == expected
