"""Near-duplicate groups: exact search and the cell partition for large collections."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shared.reports.clustering import normalise
from shared.reports.duplicates import DuplicateFinder


def planted(
    n: int, dim: int, pairs: int, seed: int = 0
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """n random unit vectors, then ``pairs`` near-copies of the first ``pairs`` rows, and one
    triple (rows 0, n, n+pairs) so that groups of three appear too."""
    rng = np.random.default_rng(seed)
    x = normalise(rng.normal(size=(n, dim)))
    copies = normalise(x[:pairs] + 0.003 * rng.normal(size=(pairs, dim)))
    third = normalise(x[:1] + 0.003 * rng.normal(size=(1, dim)))
    return np.vstack([x, copies, third]), [(i, n + i) for i in range(pairs)]


def run(tmp_path: Path, x: np.ndarray, threshold: float, batch: int = 97, **kwargs: int) -> dict:
    ids = np.arange(1, x.shape[0] + 1, dtype=np.int64) * 10
    finder = DuplicateFinder(
        tmp_path / "dup",
        capacity=x.shape[0],
        dim=x.shape[1],
        threshold=threshold,
        sample=x[::3],
        seed=0,
        **kwargs,
    )
    for start in range(0, x.shape[0], batch):
        rows = slice(start, start + batch)
        finder.add(ids[rows], ids[rows] // 10 + 1000, x[rows])
    return finder.groups(max_groups=100)


def expected_groups(n: int, pairs: int) -> set[frozenset[int]]:
    groups = {frozenset({(i + 1) * 10, (n + i + 1) * 10}) for i in range(1, pairs)}
    groups.add(frozenset({10, (n + 1) * 10, (n + pairs + 1) * 10}))
    return groups


def test_exact_search_finds_planted_groups(tmp_path: Path) -> None:
    x, _ = planted(400, 32, 5)
    summary = run(tmp_path, x, threshold=0.97)
    assert summary["method"] == "exact"
    found = {frozenset(g["object_ids"]) for g in summary["groups"]}
    assert found == expected_groups(400, 5)
    assert summary["group_count"] == 5 and summary["objects_in_groups"] == 11
    assert summary["groups"][0]["size"] == 3  # largest first
    assert all(g["min_similarity"] >= 0.97 for g in summary["groups"])
    assert summary["groups"][0]["image_ids"] == sorted(
        v // 10 + 1000 for v in summary["groups"][0]["object_ids"]
    )


def test_cells_find_the_same_groups(tmp_path: Path) -> None:
    x, _ = planted(3000, 16, 20, seed=1)
    summary = run(tmp_path, x, threshold=0.97, exact_limit=500, cell_target=200)
    assert summary["method"] == "cells"
    found = {frozenset(g["object_ids"]) for g in summary["groups"]}
    assert found == expected_groups(3000, 20)


def test_nearest_neighbours_find_the_same_groups_with_bounded_pairs(tmp_path: Path) -> None:
    """Candidate search at a low threshold: each object's few most similar only."""
    x, _ = planted(3000, 16, 20, seed=1)
    for kwargs in ({}, {"exact_limit": 500, "cell_target": 200}):
        summary = run(tmp_path / str(len(kwargs)), x, threshold=0.97, neighbours=3, **kwargs)
        found = {frozenset(g["object_ids"]) for g in summary["groups"]}
        assert found == expected_groups(3000, 20)
        loose = run(tmp_path / f"loose{len(kwargs)}", x, threshold=0.0, neighbours=3, **kwargs)
        # not all 4.5 million pairs above 0: 3 per object and cell (an object is in <= 2 cells)
        assert loose["pairs"] <= 2 * 3 * x.shape[0]
        assert loose["pairs"] >= x.shape[0]


def test_high_threshold_finds_nothing_among_random_vectors(tmp_path: Path) -> None:
    x = normalise(np.random.default_rng(3).normal(size=(300, 32)))
    summary = run(tmp_path, x, threshold=0.9)
    assert summary["group_count"] == 0 and summary["groups"] == []
