"""Cluttered backgrounds for the demo scenes: textures and unlabelled distractors.

All functions draw with a caller-owned ``numpy.random.Generator`` so a scene is a pure
function of its seed. Images are float32 RGB ``[H, W, 3]`` in 0..255.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

LETTERS = "ABDEFGHJKLMNPQRSTUVWXYZabdefghkmnpqrstuvwxyz0123456789#%&?"


def random_colour(rng: np.random.Generator) -> np.ndarray:
    """A colour float32 [3] from the whole RGB cube (saturated, pale and dark alike)."""
    return rng.uniform(0, 255, 3).astype(np.float32)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Colour noise with blobs about ``1/cells`` of the frame: [H, W, 3] float32."""
    gh = max(2, round(cells * h / max(h, w)))
    gw = max(2, round(cells * w / max(h, w)))
    small = rng.uniform(0, 255, (gh, gw, 3)).astype(np.uint8)
    up = Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC)
    return np.asarray(up, np.float32)


def _stripes(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Two-colour sinusoidal stripes at a random angle and period: [H, W, 3]."""
    angle = rng.uniform(0, math.pi)
    period = rng.uniform(6, 60)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    phase = (x * math.cos(angle) + y * math.sin(angle)) * (2 * math.pi / period)
    t = (0.5 + 0.5 * np.sin(phase))[..., None]
    a, b = random_colour(rng), random_colour(rng)
    return a * t + b * (1 - t)


def _checker(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    cell = int(rng.integers(8, 48))
    y, x = np.mgrid[0:h, 0:w]
    t = (((x // cell) + (y // cell)) % 2).astype(np.float32)[..., None]
    a, b = random_colour(rng), random_colour(rng)
    return a * t + b * (1 - t)


def background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A textured background float32 [H, W, 3]: smooth colour noise, sometimes blended with
    stripes, a checkerboard or finer noise, plus pixel noise.

    The texture's contrast is reduced towards its mean colour (×0.3–0.8): clutter should
    compete with the objects' outlines, not drown them — full-contrast colour noise makes
    blobs that a small detector cannot tell from circles in a CPU-sized training budget.
    """
    img = _smooth_noise(rng, h, w, int(rng.integers(2, 12)))
    kind = rng.random()
    if kind < 0.3:
        img = img * (1 - (a := rng.uniform(0.15, 0.45))) + _stripes(rng, h, w) * a
    elif kind < 0.45:
        img = img * (1 - (a := rng.uniform(0.1, 0.35))) + _checker(rng, h, w) * a
    elif kind < 0.7:
        detail = _smooth_noise(rng, h, w, int(rng.integers(20, 60)))
        img = img * (1 - (a := rng.uniform(0.15, 0.4))) + detail * a
    mean = img.mean((0, 1), keepdims=True)
    img = mean + (img - mean) * rng.uniform(0.3, 0.8)
    if rng.random() < 0.5:  # muted palettes too, not only saturated noise
        grey = img.mean(2, keepdims=True)
        img = grey + (img - grey) * rng.uniform(0.2, 1.0)
    sigma = rng.uniform(0, 10)
    if sigma > 1:
        img = img + rng.normal(0, sigma, (h, w, 1)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.float32)


def _fill(rng: np.random.Generator) -> tuple[int, int, int]:
    r, g, b = (int(v) for v in rng.integers(0, 256, 3))
    return (r, g, b)


def draw_distractors(rng: np.random.Generator, img: np.ndarray, count: int) -> np.ndarray:
    """Draw ``count`` unlabelled distractors (lines, scribbles, dot clouds, letters) onto
    ``img`` float32 [H, W, 3]; returns a new array. None of them is one of the classes."""
    h, w = img.shape[:2]
    canvas = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for _ in range(count):
        kind = rng.random()
        colour = _fill(rng)
        if kind < 0.3:
            x0, x1 = rng.uniform(0, w, 2)
            y0, y1 = rng.uniform(0, h, 2)
            draw.line([(x0, y0), (x1, y1)], fill=colour, width=int(rng.integers(1, 5)))
        elif kind < 0.55:
            n = int(rng.integers(3, 9))
            start = rng.uniform([0, 0], [w, h])
            steps = rng.normal(0, max(h, w) * 0.08, (n, 2))
            pts = np.cumsum(np.vstack([start, steps]), 0)
            draw.line([(float(x), float(y)) for x, y in pts], fill=colour, width=2, joint="curve")
        elif kind < 0.75:
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
            spread = rng.uniform(5, 40)
            for x, y in rng.normal([cx, cy], spread, (int(rng.integers(5, 30)), 2)):
                r = rng.uniform(0.8, 2.5)
                draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
        else:
            size = int(rng.integers(10, 28))
            font = ImageFont.load_default(size=size)
            text = "".join(rng.choice(list(LETTERS), int(rng.integers(1, 6))))
            draw.text(
                (rng.uniform(0, w - size), rng.uniform(0, h - size)), text, fill=colour, font=font
            )
    return np.asarray(canvas, np.float32)
