"""The demo's object classes as geometry: filled outlines in a unit frame.

Every class is a list of polygons in a frame where the shape spans about [-1, 1] on both
axes (y grows downwards, like image rows). A polygon's ``fill`` says whether it adds to the
shape (255) or cuts a hole (0); holes make the ring and the crescent. The classes are shapes
that a person names differently (a ring is not a circle, a crescent is not a heart), so the
detector has to learn form, not colour. (A tenth class, a lightning bolt, was dropped: drawn
small and rotated it was mostly taken for an arrow, by the detector and by people alike.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CLASS_NAMES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "star",
    "ring",
    "cross",
    "arrow",
    "heart",
    "crescent",
)


@dataclass(frozen=True)
class Polygon:
    """points float64 [P, 2] (x, y) in the unit frame; fill 255 adds, 0 cuts."""

    points: np.ndarray
    fill: int


def _ellipse(rx: float, ry: float, cx: float = 0.0, cy: float = 0.0, n: int = 72) -> np.ndarray:
    t = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1)


def _heart(n: int = 96) -> np.ndarray:
    t = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    pts = np.stack([x, y], 1)
    lo, hi = pts.min(0), pts.max(0)
    return (pts - (lo + hi) / 2) / ((hi - lo).max() / 2)


def shape_polygons(class_id: int, rng: np.random.Generator) -> list[Polygon]:
    """The polygons of one instance of ``class_id``; ``rng`` varies class-internal proportions
    (star depth, ring thickness, arm width, crescent bite) so instances are not copies."""
    name = CLASS_NAMES[class_id]
    if name == "circle":
        return [Polygon(_ellipse(1.0, 1.0), 255)]
    if name == "square":
        return [Polygon(np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64) * 0.9, 255)]
    if name == "triangle":
        apex = rng.uniform(-0.3, 0.3)
        return [Polygon(np.array([[apex, -1.0], [1.0, 0.8], [-1.0, 0.8]]), 255)]
    if name == "star":
        inner = rng.uniform(0.36, 0.5)
        k = np.arange(10)
        radius = np.where(k % 2 == 0, 1.0, inner)
        angle = -math.pi / 2 + k * math.pi / 5
        return [Polygon(np.stack([radius * np.cos(angle), radius * np.sin(angle)], 1), 255)]
    if name == "ring":
        inner = rng.uniform(0.5, 0.68)
        return [Polygon(_ellipse(1.0, 1.0), 255), Polygon(_ellipse(inner, inner), 0)]
    if name == "cross":
        w = rng.uniform(0.26, 0.36)
        pts = [(-w, -1), (w, -1), (w, -w), (1, -w), (1, w), (w, w)]
        pts += [(w, 1), (-w, 1), (-w, w), (-1, w), (-1, -w), (-w, -w)]
        return [Polygon(np.array(pts, np.float64), 255)]
    if name == "arrow":
        shaft = rng.uniform(0.18, 0.28)
        neck = rng.uniform(0.05, 0.3)
        head = rng.uniform(0.6, 0.75)
        pts = [(-1, -shaft), (neck, -shaft), (neck, -head), (1, 0)]
        pts += [(neck, head), (neck, shaft), (-1, shaft)]
        return [Polygon(np.array(pts, np.float64), 255)]
    if name == "heart":
        return [Polygon(_heart(), 255)]
    if name == "crescent":
        bite = rng.uniform(0.78, 0.92)
        shift = rng.uniform(0.38, 0.55)
        return [Polygon(_ellipse(1.0, 1.0), 255), Polygon(_ellipse(bite, bite, shift), 0)]
    raise ValueError(f"unknown class id {class_id}")
