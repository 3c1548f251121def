"""The PCA map."""

from __future__ import annotations

import numpy as np

from shared.reports.projection import fit_pca


def test_pca_finds_the_main_axes() -> None:
    rng = np.random.default_rng(0)
    x = np.zeros((500, 6), dtype=np.float32)
    x[:, 2] = 10 * rng.normal(size=500)
    x[:, 4] = 3 * rng.normal(size=500)
    x += 0.01 * rng.normal(size=x.shape).astype(np.float32)
    projection = fit_pca(x + 5.0)
    assert abs(abs(projection.axes[0, 2]) - 1.0) < 1e-3
    assert abs(abs(projection.axes[1, 4]) - 1.0) < 1e-3
    assert projection.explained[0] > 0.85 and projection.explained[1] > 0.05
    xy = projection.apply(x + 5.0)
    assert xy.shape == (500, 2)
    assert abs(float(xy[:, 0].mean())) < 1e-3
    assert np.allclose(np.abs(xy[:, 0]), np.abs(x[:, 2] - x[:, 2].mean()), atol=0.1)


def test_pca_of_a_single_point_is_defined() -> None:
    projection = fit_pca(np.ones((1, 4), dtype=np.float32))
    assert projection.apply(np.ones((1, 4), dtype=np.float32)).tolist() == [[0.0, 0.0]]
