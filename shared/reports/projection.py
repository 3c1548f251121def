"""A 2-D map of the vectors: principal component analysis (PCA) of a sample.

Array contract: ``x`` float32 [n, d]; the map holds coordinates float32 [n, 2] on the first two
principal axes of the fitted sample (centred on its mean). PCA is linear and deterministic
(signs are fixed so that each axis' largest loading is positive), so the same data gives the
same picture.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Projection:
    mean: np.ndarray  # float32 [d]
    axes: np.ndarray  # float32 [2, d], orthonormal rows
    explained: tuple[float, float]  # share of the variance on each axis

    def apply(self, x: np.ndarray) -> np.ndarray:
        """float32 [n, 2] coordinates of float32 [n, d] rows."""
        return ((x - self.mean) @ self.axes.T).astype(np.float32)


POWER_ITERATIONS = 300


def _top_two(covariance: np.ndarray) -> np.ndarray:
    """float64 [2, d] leading orthonormal eigenvectors of a symmetric PSD matrix.

    Subspace (power) iteration with a fixed start: only small matrix products. LAPACK's eigh and
    SVD went through multi-threaded OpenBLAS and took seconds (SVD: tens of seconds) for a
    256 x 256 problem on a loaded 2-core machine; this takes milliseconds anywhere.
    """
    d = covariance.shape[0]
    basis = np.random.default_rng(0).normal(size=(d, 2))
    for _ in range(POWER_ITERATIONS):
        nxt = covariance @ basis
        first = nxt[:, 0] / max(float(np.linalg.norm(nxt[:, 0])), 1e-300)
        second = nxt[:, 1] - (first @ nxt[:, 1]) * first
        second /= max(float(np.linalg.norm(second)), 1e-300)
        nxt = np.stack([first, second], axis=1)
        if np.allclose(np.abs((nxt * basis).sum(axis=0)), 1.0, atol=1e-10):
            basis = nxt
            break
        basis = nxt
    return np.asarray(basis.T)


def fit_pca(x: np.ndarray) -> Projection:
    """The two leading principal axes of ``x`` (n >= 1); zero axes when the data has less rank."""
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=0)
    centred = x - mean
    covariance = centred.T @ centred
    total = float(np.trace(covariance))
    axes = np.zeros((2, x.shape[1]), dtype=np.float64)
    explained = [0.0, 0.0]
    if total > 0:
        axes = _top_two(covariance)
        for i, row in enumerate(axes):
            variance = float(row @ covariance @ row)
            if variance <= total * 1e-12:
                row[:] = 0.0
                continue
            explained[i] = variance / total
            if row[np.argmax(np.abs(row))] < 0:
                row *= -1.0
    return Projection(
        mean=mean.astype(np.float32),
        axes=axes.astype(np.float32),
        explained=(round(explained[0], 6), round(explained[1], 6)),
    )
