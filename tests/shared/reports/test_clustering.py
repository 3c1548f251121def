"""Spherical k-means, the silhouette criterion, automatic k and the density method."""

from __future__ import annotations

import numpy as np
import pytest

from shared.reports.clustering import (
    choose_k,
    density_labels,
    fit_density_group,
    fit_kmeans_group,
    k_candidates,
    normalise,
    silhouette_cosine,
    spherical_kmeans,
)


def blobs(
    k: int, per: int, dim: int = 24, noise: float = 0.35, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around k random centres, rows shuffled; (x float32 [k*per, dim], labels)."""
    rng = np.random.default_rng(seed)
    centres = normalise(rng.normal(size=(k, dim)))
    labels = np.repeat(np.arange(k), per)
    x = normalise(centres[labels] + noise * rng.normal(size=(k * per, dim)) / np.sqrt(dim) * 3)
    order = rng.permutation(labels.size)
    return x[order], labels[order]


def purity(found: np.ndarray, truth: np.ndarray) -> float:
    total = 0
    for label in np.unique(found):
        total += np.bincount(truth[found == label]).max()
    return total / truth.size


def test_kmeans_recovers_blobs() -> None:
    x, truth = blobs(4, 60)
    centroids = spherical_kmeans(x, 4, seed=0, iterations=20)
    assert centroids.shape == (4, x.shape[1])
    assert np.allclose(np.linalg.norm(centroids, axis=1), 1.0, atol=1e-5)
    found = np.argmax(x @ centroids.T, axis=1)
    assert purity(found, truth) > 0.95


def test_kmeans_refuses_more_clusters_than_points() -> None:
    x, _ = blobs(2, 3)
    with pytest.raises(ValueError, match="larger than the 6 points"):
        spherical_kmeans(x, 7, seed=0, iterations=5)


def test_silhouette_prefers_true_labels() -> None:
    x, truth = blobs(3, 50)
    shuffled = np.random.default_rng(1).permutation(truth)
    assert silhouette_cosine(x, truth) > 0.3
    assert silhouette_cosine(x, truth) > silhouette_cosine(x, shuffled) + 0.3
    assert silhouette_cosine(x, np.zeros(truth.size, dtype=np.int64)) == 0.0


def test_auto_k_finds_the_number_of_blobs() -> None:
    x, _ = blobs(5, 50, seed=3)
    choice, centroids = choose_k(x, k_min=2, k_max=10, seed=0, iterations=20)
    assert choice.criterion == "silhouette"
    assert choice.k == 5, choice.scores
    assert centroids.shape[0] == 5
    assert set(choice.scores) == set(range(2, 11))


def test_k_candidates_are_bounded_and_span_the_range() -> None:
    assert k_candidates(2, 8) == list(range(2, 9))
    many = k_candidates(2, 500)
    assert len(many) <= 14 and many[0] == 2 and many[-1] == 500


def test_given_k_is_capped_by_the_group_size() -> None:
    x, _ = blobs(2, 3)
    model = fit_kmeans_group(
        x, group=1, first_label=10, k=9, k_min=2, k_max=5, seed=0, iterations=5
    )
    assert model.k == 6 and model.k_choice.criterion == "capped"
    labels, sims = model.assign(x)
    assert labels.min() >= 10 and labels.max() < 16
    assert np.all(sims > 0.99)  # every point is its own centre


def test_clusters_are_numbered_by_training_size() -> None:
    rng = np.random.default_rng(0)
    centres = normalise(rng.normal(size=(2, 16)))
    x = normalise(np.repeat(centres, [10, 40], axis=0) + 0.05 * rng.normal(size=(50, 16)))
    model = fit_kmeans_group(
        x, group=None, first_label=0, k=2, k_min=2, k_max=2, seed=0, iterations=10
    )
    labels, _ = model.assign(x)
    assert np.bincount(labels).tolist() == [40, 10]


def test_density_finds_blobs_and_noise() -> None:
    x, truth = blobs(3, 40, noise=0.2)
    rng = np.random.default_rng(9)
    noise = normalise(rng.normal(size=(6, x.shape[1])))
    labels = density_labels(np.vstack([x, noise]), similarity=0.7, min_samples=5)
    assert set(labels[:120].tolist()) == {0, 1, 2}
    assert purity(labels[:120], truth) == 1.0
    assert np.all(labels[120:] == -1)


def test_density_group_assigns_new_points_or_noise() -> None:
    x, _ = blobs(2, 40, noise=0.2, seed=5)
    model = fit_density_group(x, group=None, first_label=3, similarity=0.7, min_samples=5)
    assert model.k == 2
    far = normalise(np.random.default_rng(2).normal(size=(3, x.shape[1])))
    labels, _ = model.assign(np.vstack([x[:5], far]))
    assert np.all(labels[:5] >= 3)
    assert np.all(labels[5:] == -1)
