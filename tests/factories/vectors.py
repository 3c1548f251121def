"""Vectors and boxes shaped like the index's inputs, without a database."""

from __future__ import annotations

from typing import TypedDict

import numpy as np


def clustered(
    n: int, dim: int, *, clusters: int = 20, spread: float = 0.25, seed: int = 0
) -> np.ndarray:
    """Unit vectors float32 ``[n, dim]`` drawn around ``clusters`` random centres."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.integers(0, clusters, size=n)
    x = centres[labels] + spread * rng.normal(size=(n, dim)).astype(np.float32) / np.sqrt(dim)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x, np.float32)


def unit(v: np.ndarray) -> np.ndarray:
    """``v`` scaled to length 1, float32."""
    return (v / np.linalg.norm(v)).astype(np.float32)


class Boxes(TypedDict):
    """The box columns of :class:`~shared.index.rows.ObjectRows`, to splat into it by keyword."""

    x1: np.ndarray
    y1: np.ndarray
    x2: np.ndarray
    y2: np.ndarray


def boxes_of(
    sides: np.ndarray, *, x: float | np.ndarray = 1.0, y: float | np.ndarray = 2.0
) -> Boxes:
    """``ObjectRows`` box columns (float32 ``[n]``) at ``(x, y)`` with shorter side ``sides``
    (as :func:`~tests.factories.rows.add_objects` draws them: 5 px taller than wide)."""
    sides = np.asarray(sides, np.float32)
    x1 = np.broadcast_to(np.asarray(x, np.float32), sides.shape).copy()
    y1 = np.broadcast_to(np.asarray(y, np.float32), sides.shape).copy()
    return Boxes(x1=x1, y1=y1, x2=x1 + sides, y2=y1 + sides + np.float32(5))
