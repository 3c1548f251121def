"""Near-duplicate groups: objects whose vectors are at least ``threshold`` similar.

Vectors stream in once and go to a float32 ``.npy`` memory map in a work folder (disk, not
RAM). Up to ``EXACT_LIMIT`` objects the search is exact: one FAISS range search of every
object against all. Above it, the objects are partitioned into cells of about ``CELL_TARGET``
by spherical k-means centres trained on the report's sample; each object goes to its nearest
cell A and also to its second-nearest B when its similarity to B is at most
``delta * |A - B| / 2`` below that to A (``delta = sqrt(2 (1 - threshold))``, the largest
distance between two near-duplicates). For a pair split between A and B the two similarity
gaps add up to at most ``delta * |A - B|``, so one of them is within that bound and the pair
meets in one cell — unless a third centre lies between them (the approximation). The range
search runs inside each cell; memory is bounded by one cell.

Groups are the connected components of the "at least ``threshold`` similar" graph.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from shared.reports.clustering import spherical_kmeans
from shared.reports.graphs import connected_components

EXACT_LIMIT = 20_000
CELL_TARGET = 1_024
QUERY_CHUNK = 2_048
MAX_PAIRS = 5_000_000
MAX_GROUP_MEMBERS = 50


class DuplicateFinder:
    """Collect vectors (``add``), then find groups (``groups``). Owns ``workdir`` files."""

    def __init__(
        self,
        workdir: Path,
        *,
        capacity: int,
        dim: int,
        threshold: float,
        sample: np.ndarray,
        seed: int,
        exact_limit: int = EXACT_LIMIT,
        cell_target: int = CELL_TARGET,
        neighbours: int | None = None,
    ) -> None:
        """``capacity``: most objects that will be added; ``sample``: float32 [m, dim];
        ``neighbours``: keep only each object's ``neighbours`` most similar (per cell) instead
        of every pair above the threshold — bounds the pairs by ``n * neighbours`` at the low
        thresholds of candidate search."""
        workdir.mkdir(parents=True, exist_ok=True)
        self.threshold = threshold
        self.neighbours = neighbours
        self.capacity = capacity
        self.dim = dim
        self.vectors = np.lib.format.open_memmap(
            workdir / "vectors.npy", mode="w+", dtype=np.float32, shape=(max(capacity, 1), dim)
        )
        self.ids = np.zeros(max(capacity, 1), dtype=np.int64)
        self.image_ids = np.zeros(max(capacity, 1), dtype=np.int64)
        self.count = 0
        # The largest distance between two unit vectors at least ``threshold`` similar.
        self.delta = math.sqrt(2.0 * max(0.0, 1.0 - threshold))
        self.cells: np.ndarray | None = None
        self.cell_of = np.zeros((max(capacity, 1), 2), dtype=np.int32)
        self.cell_sims = np.zeros((max(capacity, 1), 2), dtype=np.float32)
        if capacity > exact_limit and sample.shape[0] > 1:
            n_cells = min(sample.shape[0], math.ceil(capacity / cell_target))
            self.cells = spherical_kmeans(sample, n_cells, seed=seed, iterations=10, restarts=1)
            self._cell_index = faiss.IndexFlatIP(dim)
            self._cell_index.add(self.cells)

    @property
    def method(self) -> str:
        return "exact" if self.cells is None else "cells"

    def add(self, ids: np.ndarray, image_ids: np.ndarray, vectors: np.ndarray) -> None:
        """Append int64 [n] ids, image ids and float32 [n, dim] unit vectors."""
        n = min(ids.size, self.capacity - self.count)
        if n <= 0:
            return
        rows = slice(self.count, self.count + n)
        self.vectors[rows] = vectors[:n]
        self.ids[rows] = ids[:n]
        self.image_ids[rows] = image_ids[:n]
        if self.cells is not None:
            top = min(2, self.cells.shape[0])
            sims, cells = self._cell_index.search(np.ascontiguousarray(vectors[:n]), top)
            if top == 1:
                sims = np.repeat(sims, 2, axis=1)
                cells = np.repeat(cells, 2, axis=1)
            self.cell_of[rows] = cells
            self.cell_sims[rows] = sims
        self.count += n

    def _cells(self) -> list[np.ndarray]:
        """Row indices of each cell (sorted), an object in up to two cells."""
        n = self.count
        if self.cells is None:
            return [np.arange(n)]
        primary = self.cell_of[:n, 0]
        second = self.cell_of[:n, 1]
        # For a pair a, b (distance <= delta) split between cells A and B:
        # gap_a + gap_b = (a - b) . (A - B) <= delta |A - B|, so the object with the smaller gap
        # is within delta |A - B| / 2 of its second cell: include it there.
        # |A - B| of unit centres from their similarity, looked up per object (an [n, d]
        # gather of centres would cost n * d floats).
        centre_sims = self.cells @ self.cells.T
        centre_gap = np.sqrt(np.clip(2.0 - 2.0 * centre_sims[primary, second], 0.0, None))
        second_ok = (
            self.cell_sims[:n, 0] - self.cell_sims[:n, 1] <= self.delta * centre_gap / 2
        ) & (second != primary)
        cell = np.concatenate([primary, self.cell_of[:n, 1][second_ok]])
        rows = np.concatenate([np.arange(n), np.flatnonzero(second_ok)])
        order = np.lexsort((rows, cell))
        cell, rows = cell[order], rows[order]
        bounds = np.flatnonzero(np.diff(cell)) + 1
        return [part for part in np.split(rows, bounds) if part.size > 1]

    def pairs(
        self, progress: Callable[[float], None] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
        """(left rows, right rows, similarity) of pairs at/above the threshold; truncated?"""
        lefts: list[np.ndarray] = []
        rights: list[np.ndarray] = []
        sims: list[np.ndarray] = []
        total = 0
        radius = self.threshold - 1e-6  # range_search keeps similarity > radius
        cells = self._cells()
        for n, rows in enumerate(cells):
            if progress is not None:
                progress(n / len(cells))
            x = np.ascontiguousarray(self.vectors[rows])
            index = faiss.IndexFlatIP(self.dim)
            index.add(x)
            for start in range(0, rows.size, QUERY_CHUNK):
                if self.neighbours is None:
                    lims, dist, hits = index.range_search(x[start : start + QUERY_CHUNK], radius)
                    counts = np.diff(lims).astype(np.int64)
                else:
                    k = min(self.neighbours + 1, rows.size)  # +1: the object itself
                    top, found = index.search(x[start : start + QUERY_CHUNK], k)
                    dist, hits = top.ravel(), found.ravel().astype(np.int64)
                    counts = np.full(top.shape[0], k, dtype=np.int64)
                query = np.repeat(np.arange(counts.size) + start, counts)
                # each unordered pair once (a kNN pair seen from its other end too is
                # removed below), never the object itself
                keep = (hits != query) & (hits >= 0) & (dist > radius)
                if self.neighbours is None:
                    keep &= hits > query
                else:
                    query, hits = np.minimum(query, hits), np.maximum(query, hits)
                lefts.append(rows[query[keep]])
                rights.append(rows[hits[keep]])
                sims.append(dist[keep])
                total += int(keep.sum())
                if total >= MAX_PAIRS:
                    return self._unique(lefts, rights, sims, truncated=True)
        return self._unique(lefts, rights, sims, truncated=False)

    def _unique(
        self,
        lefts: list[np.ndarray],
        rights: list[np.ndarray],
        sims: list[np.ndarray],
        *,
        truncated: bool,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
        """The pairs, each once (a pair can be found from both ends, or in two cells)."""
        left, right, sim = _cat(lefts), _cat(rights), _catf(sims)
        if left.size:
            _, first = np.unique(left * max(self.count, 1) + right, return_index=True)
            left, right, sim = left[first], right[first], sim[first]
        return left, right, sim, truncated

    def groups(
        self, max_groups: int, progress: Callable[[float], None] | None = None
    ) -> dict[str, Any]:
        """Summary: the ``max_groups`` largest groups of every pair at/above the threshold
        (JSON-ready). ``progress(fraction)`` is called as the cells are searched."""
        left, right, sims, truncated = self.pairs(progress)
        return {
            "threshold": self.threshold,
            "method": self.method,
            **group_summary(
                self.ids[: self.count],
                self.image_ids[: self.count],
                left,
                right,
                {"min_similarity": sims},
                max_groups,
            ),
            "truncated": truncated,
        }


def group_summary(
    ids: np.ndarray,
    image_ids: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    links: dict[str, np.ndarray],
    max_groups: int,
) -> dict[str, Any]:
    """Groups = connected components of the edges ``left``-``right`` (rows into int64 [n]
    ``ids``/``image_ids``); the ``max_groups`` largest, each with the weakest value of every
    float [e] edge array in ``links`` (key = the name it gets in the group), JSON-ready."""
    n = int(ids.size)
    labels = connected_components(n, left, right)
    counts = np.bincount(labels, minlength=n) if n else np.zeros(0, dtype=np.int64)
    roots = np.flatnonzero(counts >= 2)
    weakest: dict[str, np.ndarray] = {}
    for name, values in links.items():
        low = np.full(n, np.inf, dtype=np.float64)
        if left.size:
            np.minimum.at(low, labels[left], values.astype(np.float64))
        weakest[name] = low
    order = roots[np.lexsort((roots, -counts[roots]))][:max_groups]
    groups = []
    for root in order.tolist():
        rows = np.flatnonzero(labels == root)
        group: dict[str, Any] = {"size": int(rows.size)}
        # The weakest link that joins the group (not every pair is that similar).
        group.update({name: round(float(low[root]), 6) for name, low in weakest.items()})
        group["object_ids"] = [int(v) for v in ids[rows[:MAX_GROUP_MEMBERS]]]
        group["image_ids"] = sorted({int(v) for v in image_ids[rows]})
        groups.append(group)
    return {
        "group_count": int(roots.size),
        "objects_in_groups": int(counts[roots].sum()) if roots.size else 0,
        "pairs": int(left.size),
        "groups": groups,
    }


def _cat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)


def _catf(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, dtype=np.float32)
