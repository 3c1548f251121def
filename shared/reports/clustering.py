"""Clustering of unit vectors: spherical k-means (FAISS), automatic k, a density method.

Array contract: inputs ``x`` are float32 [n, d], L2-normalised rows (cosine similarity is the
inner product). Centroids are float32 [k, d], L2-normalised. Labels are int64, ``-1`` = noise
(density method only). Similarities are cosine similarities in [-1, 1].

Automatic k (k-means): for each candidate k in ``k_min..k_max`` (every value up to 12
candidates, else about 12 values spaced geometrically) k-means (best of ``KMEANS_RESTARTS``
runs) is trained on at most ``AUTO_K_TRAIN`` sample points and scored by the **mean
silhouette** with cosine distance (1 - similarity) on at most ``SILHOUETTE_POINTS`` of them;
the k with the highest score wins
(ties: the smaller k). The silhouette compares each point's mean distance to its own cluster
with that to the nearest other cluster, so it rewards compact, separated clusters and does
not grow with k the way the k-means objective does.

Density method: DBSCAN on the k-nearest-neighbour graph of at most ``DENSITY_SAMPLE`` sample
points. Two points are neighbours when their similarity is above ``density_similarity``; a
point with at least ``min_samples`` neighbours (itself included, among its
``DENSITY_NEIGHBOURS`` nearest) is a core point; core points linked as neighbours form a
cluster; every other object joins the cluster of its nearest core point if that one is a
neighbour, else it is noise. Restricting links to the nearest neighbours keeps memory and time
linear in the sample (exact DBSCAN needs every pair).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import faiss
import numpy as np

from shared.reports.graphs import connected_components

AUTO_K_TRAIN = 10_000
# k-means runs from this many seeds and keeps the lowest objective: one run often merges two
# clusters and splits another, which skews the silhouette comparison between k values.
KMEANS_RESTARTS = 5
SILHOUETTE_POINTS = 2_000
MAX_K_CANDIDATES = 12
DENSITY_SAMPLE = 20_000
DENSITY_NEIGHBOURS = 32
ASSIGN_BATCH = 65_536


@dataclass(frozen=True)
class KChoice:
    """How k was chosen: ``criterion`` is ``given``, ``silhouette``, ``capped`` or ``single``."""

    k: int
    criterion: str
    scores: dict[int, float] = field(default_factory=dict)


@dataclass
class GroupModel:
    """The clusters of one group: a class (per-class reports) or every object.

    Cluster ``i`` of this group has the report-wide label ``first_label + i``.
    """

    group: int | None
    first_label: int
    centroids: np.ndarray
    k_choice: KChoice
    training_points: int
    # Density method only: core points and their local labels, and the neighbour threshold.
    core_vectors: np.ndarray | None = None
    core_labels: np.ndarray | None = None
    threshold: float | None = None

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])

    def assign(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Labels int64 [n] (report-wide, -1 noise) and similarity to the label's centre [n]."""
        n = x.shape[0]
        if self.k == 0:
            return np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.float32)
        centre_sims, nearest = nearest_points(self.centroids, x)
        if self.core_vectors is None or self.core_labels is None:
            return nearest.astype(np.int64) + self.first_label, centre_sims
        core_sims, core = nearest_points(self.core_vectors, x)
        local = self.core_labels[core]
        ok = core_sims > (self.threshold or 0.0)
        labels = np.where(ok, local + self.first_label, -1).astype(np.int64)
        sims = np.einsum("nd,nd->n", x, self.centroids[np.clip(local, 0, None)])
        return labels, np.where(ok, sims, centre_sims).astype(np.float32)


def nearest_points(points: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(similarity float32 [n], index int64 [n]) of each row of x's most similar point."""
    index = faiss.IndexFlatIP(points.shape[1])
    index.add(np.ascontiguousarray(points, dtype=np.float32))
    sims = np.empty(x.shape[0], dtype=np.float32)
    nearest = np.empty(x.shape[0], dtype=np.int64)
    for start in range(0, x.shape[0], ASSIGN_BATCH):
        d, i = index.search(np.ascontiguousarray(x[start : start + ASSIGN_BATCH]), 1)
        sims[start : start + d.shape[0]] = d[:, 0]
        nearest[start : start + d.shape[0]] = i[:, 0]
    return sims, nearest


def normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


def spherical_kmeans(
    x: np.ndarray, k: int, *, seed: int, iterations: int, restarts: int = KMEANS_RESTARTS
) -> np.ndarray:
    """Centroids float32 [k, d] of spherical k-means on ``x`` (n >= k), best of ``restarts``."""
    n, d = x.shape
    if k > n:
        raise ValueError(f"k={k} is larger than the {n} points")
    if k == 1:
        return normalise(x.mean(axis=0, keepdims=True))
    kmeans = faiss.Kmeans(
        d,
        k,
        niter=iterations,
        seed=seed,
        nredo=restarts,
        spherical=True,
        verbose=False,
        # Use every training point given: the caller already sampled.
        max_points_per_centroid=max(256, math.ceil(n / k)),
        min_points_per_centroid=1,
    )
    kmeans.train(np.ascontiguousarray(x, dtype=np.float32))
    return normalise(np.asarray(kmeans.centroids, dtype=np.float32))


def silhouette_cosine(x: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette of ``labels`` (int [m], >= 0) with cosine distance; 0 for one cluster."""
    m = x.shape[0]
    present = np.unique(labels)
    if present.size < 2 or m < 3:
        return 0.0
    dense = np.searchsorted(present, labels)
    k = present.size
    dist = 1.0 - x @ x.T
    np.clip(dist, 0.0, 2.0, out=dist)
    onehot = np.zeros((m, k), dtype=np.float32)
    onehot[np.arange(m), dense] = 1.0
    sums = dist @ onehot  # [m, k] summed distance of each point to each cluster
    counts = onehot.sum(axis=0)
    own = counts[dense]
    rows = np.arange(m)
    a = sums[rows, dense] / np.maximum(own - 1.0, 1.0)  # the zero self-distance is excluded
    mean_other = sums / counts[None, :]
    mean_other[rows, dense] = np.inf
    b = mean_other.min(axis=1)
    s = (b - a) / np.maximum(np.maximum(a, b), 1e-12)
    s[own <= 1] = 0.0
    return float(s.mean())


def k_candidates(k_min: int, k_max: int) -> list[int]:
    if k_max - k_min + 1 <= MAX_K_CANDIDATES:
        return list(range(k_min, k_max + 1))
    values = np.geomspace(k_min, k_max, MAX_K_CANDIDATES)
    return sorted({round(float(v)) for v in values} | {k_min, k_max})


def choose_k(
    x: np.ndarray, *, k_min: int, k_max: int, seed: int, iterations: int
) -> tuple[KChoice, np.ndarray]:
    """Best k by mean cosine silhouette, and that k's centroids (trained on all of ``x``).

    ``x`` rows should be in random order (a bottom-k sample is): prefixes are subsamples.
    """
    n = x.shape[0]
    k_max = min(k_max, n - 1)
    if n < 3 or k_max < k_min:
        k = max(1, min(k_min, n))
        return KChoice(k=k, criterion="single" if k == 1 else "capped"), spherical_kmeans(
            x, k, seed=seed, iterations=iterations
        )
    train = x[:AUTO_K_TRAIN]
    probe = x[:SILHOUETTE_POINTS]
    scores: dict[int, float] = {}
    for k in k_candidates(k_min, min(k_max, train.shape[0])):
        centroids = spherical_kmeans(train, k, seed=seed, iterations=iterations)
        _, labels = nearest_points(centroids, probe)
        scores[k] = round(silhouette_cosine(probe, labels), 6)
    best = max(scores, key=lambda k: (scores[k], -k))
    centroids = spherical_kmeans(x, best, seed=seed, iterations=iterations)
    return KChoice(k=best, criterion="silhouette", scores=scores), centroids


def density_labels(x: np.ndarray, *, similarity: float, min_samples: int) -> np.ndarray:
    """DBSCAN-style labels int64 [m] (-1 noise) on the k-NN graph; clusters largest first.

    Clusters are numbered by their number of core points, largest first.
    """
    m = x.shape[0]
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(np.ascontiguousarray(x, dtype=np.float32))
    neighbours = min(m, max(DENSITY_NEIGHBOURS, min_samples))
    sims, nn = index.search(np.ascontiguousarray(x, dtype=np.float32), neighbours)
    linked = (sims > similarity) & (nn >= 0)
    core = linked.sum(axis=1) >= min_samples
    rows = np.repeat(np.arange(m), neighbours).reshape(m, neighbours)
    edge = linked & core[rows] & core[np.clip(nn, 0, None)]
    components = connected_components(m, rows[edge], nn[edge])
    labels = np.full(m, -1, dtype=np.int64)
    roots, sizes = np.unique(components[core], return_counts=True)
    order = np.lexsort((roots, -sizes))  # largest first, ties by the smaller root
    rank = {int(roots[i]): r for r, i in enumerate(order)}
    for i in np.flatnonzero(core):
        labels[i] = rank[int(components[i])]
    # Border points: not core, but a neighbour of one; they join the nearest such core point.
    reach = linked & core[np.clip(nn, 0, None)] & ~core[:, None]
    border = np.flatnonzero(reach.any(axis=1))
    first = np.argmax(reach[border], axis=1)  # neighbours are sorted nearest first
    labels[border] = labels[nn[border, first]]
    return labels


def fit_kmeans_group(
    x: np.ndarray,
    *,
    group: int | None,
    first_label: int,
    k: int | None,
    k_min: int,
    k_max: int,
    seed: int,
    iterations: int,
) -> GroupModel:
    """k-means clusters of one group's training sample ``x`` (given k, else automatic)."""
    n = x.shape[0]
    if k is not None:
        chosen = KChoice(k=min(k, n), criterion="given" if k <= n else "capped")
        centroids = spherical_kmeans(x, chosen.k, seed=seed, iterations=iterations)
    else:
        chosen, centroids = choose_k(x, k_min=k_min, k_max=k_max, seed=seed, iterations=iterations)
    centroids = _by_sample_size(x, centroids)
    return GroupModel(
        group=group,
        first_label=first_label,
        centroids=centroids,
        k_choice=chosen,
        training_points=n,
    )


def fit_density_group(
    x: np.ndarray,
    *,
    group: int | None,
    first_label: int,
    similarity: float,
    min_samples: int,
) -> GroupModel:
    """Density clusters of one group's training sample; centres are the mean core vectors."""
    x = x[:DENSITY_SAMPLE]
    labels = density_labels(x, similarity=similarity, min_samples=min_samples)
    core = labels >= 0
    k = int(labels.max()) + 1 if core.any() else 0
    centroids = np.zeros((k, x.shape[1]), dtype=np.float32)
    np.add.at(centroids, labels[core], x[core])
    centroids = normalise(centroids) if k else centroids
    return GroupModel(
        group=group,
        first_label=first_label,
        centroids=centroids,
        k_choice=KChoice(k=k, criterion="density"),
        training_points=int(x.shape[0]),
        core_vectors=np.ascontiguousarray(x[core]),
        core_labels=labels[core],
        threshold=similarity,
    )


def _by_sample_size(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Centroids reordered so that cluster 0 holds the most training points."""
    if centroids.shape[0] < 2:
        return centroids
    _, nearest = nearest_points(centroids, x)
    counts = np.bincount(nearest, minlength=centroids.shape[0])
    return centroids[np.lexsort((np.arange(counts.size), -counts))]
