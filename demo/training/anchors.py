"""Anchor sizes fitted to the training boxes (k-means on log width/height).

The official tiny anchors are tuned for COCO at 640 px; our objects at the demo's input size
span roughly 10–300 px and are nearly square. Fitting nine anchors to the boxes as the
network sees them gives every level shapes it actually meets, so anchor-ratio matching finds
positives for every object.
"""

from __future__ import annotations

import numpy as np


def fit_anchors(
    sizes: np.ndarray, levels: int = 3, per_level: int = 3, iterations: int = 30
) -> list[list[float]]:
    """sizes float [N, 2] box w, h (network-input pixels) → ``levels`` rows of ``per_level``
    (w, h) pairs flattened, smallest areas on the first (finest) level.

    Lloyd's k-means in log space (scale-invariant distance), started from area quantiles,
    so the result is a deterministic function of the sizes.
    """
    k = levels * per_level
    sizes = np.asarray(sizes, np.float64).reshape(-1, 2)
    sizes = sizes[(sizes > 1).all(1)]
    if len(sizes) < k:
        raise ValueError(f"need at least {k} boxes to fit anchors, got {len(sizes)}")
    logs = np.log(sizes)
    order = np.argsort(logs.sum(1))
    centres = logs[order[((np.arange(k) + 0.5) / k * len(order)).astype(int)]].copy()
    for _ in range(iterations):
        dist = ((logs[:, None, :] - centres[None]) ** 2).sum(-1)
        nearest = dist.argmin(1)
        for c in range(k):
            members = logs[nearest == c]
            if len(members):
                centres[c] = members.mean(0)
    anchors = np.exp(centres)
    anchors = anchors[np.argsort(anchors.prod(1))]
    rows = anchors.reshape(levels, per_level * 2)
    return [[round(float(v), 1) for v in row] for row in rows]
