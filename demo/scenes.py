"""Deterministic generated scenes with exact ground truth, for the demo detector.

``generate_scene(seed, index)`` is a pure function of ``(seed, index)``: scene 17 of seed 3 is
the same picture whether 20 or 20 000 scenes are generated, in any order or process.

A scene: an image of varied size and aspect ratio (long side 200–320 px, aspect up to 2:1,
landscape or portrait) with a textured background and unlabelled distractors, then 0–12
objects of :data:`CLASS_NAMES` drawn one after another with varied colour, fill, outline,
size (from 16 px to most of the short side), aspect, rotation, partial occlusion by later
objects and truncation by the frame.

Ground truth per object is the tight box of its **visible** pixels (COCO's convention: the
box encloses what can be seen, not the occluded part), measured on its antialiased mask at
alpha ≥ 0.5 after occlusion and clipping. Placement keeps every object at least
:data:`MIN_VISIBLE` visible, so a box never describes a sliver.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from demo.backgrounds import background, draw_distractors
from demo.shapes import CLASS_NAMES, Polygon, shape_polygons

__all__ = [
    "CLASS_NAMES",
    "MAX_OBJECTS",
    "MIN_OBJECT_PX",
    "MIN_VISIBLE",
    "Scene",
    "SceneObject",
    "encode_jpeg",
    "generate_scene",
    "scene_rng",
]

MAX_OBJECTS = 12
MIN_OBJECT_PX = 16
MIN_VISIBLE = 0.7  # of an object's mask area, after occlusion and truncation
MIN_CONTRAST = 100.0  # RGB distance between an object's colour and what lies under it
LONG_SIDE = (200, 320)
ASPECTS = (1.0, 4 / 3, 3 / 2, 16 / 9, 2.0)


@dataclass(frozen=True)
class SceneObject:
    """One labelled object: class index into CLASS_NAMES; ``box`` x1, y1, x2, y2 in image
    pixels (pixel edges, so a one-pixel object at column 5 spans 5..6); ``area`` visible mask
    area in pixels; ``visible`` the visible fraction of its whole mask."""

    class_id: int
    box: tuple[float, float, float, float]
    area: float
    visible: float


@dataclass
class Scene:
    """image uint8 RGB [H, W, 3] before JPEG encoding; objects in drawing order."""

    image: np.ndarray
    objects: list[SceneObject]
    jpeg_quality: int
    seed: int
    index: int

    @property
    def boxes(self) -> np.ndarray:
        """float32 [N, 4] x1y1x2y2 in image pixels."""
        return np.array([o.box for o in self.objects], np.float32).reshape(-1, 4)

    @property
    def classes(self) -> np.ndarray:
        """int64 [N]."""
        return np.array([o.class_id for o in self.objects], np.int64)


def scene_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of one scene: independent streams per (seed, index)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))


@dataclass
class _Mask:
    """An object's antialiased mask placed in the frame: alpha float32 [h, w] covering image
    rows y0:y0+h and columns x0:x0+w (already clipped to the frame)."""

    alpha: np.ndarray
    x0: int
    y0: int
    full_area: float

    def window(self, other: _Mask) -> tuple[slice, slice, slice, slice] | None:
        """Overlap of two masks as (rows, cols) slices into self and into other."""
        ya, yb = (
            max(self.y0, other.y0),
            min(self.y0 + self.alpha.shape[0], other.y0 + other.alpha.shape[0]),
        )
        xa, xb = (
            max(self.x0, other.x0),
            min(self.x0 + self.alpha.shape[1], other.x0 + other.alpha.shape[1]),
        )
        if ya >= yb or xa >= xb:
            return None
        return (
            slice(ya - self.y0, yb - self.y0),
            slice(xa - self.x0, xb - self.x0),
            slice(ya - other.y0, yb - other.y0),
            slice(xa - other.x0, xb - other.x0),
        )


def _rasterise(
    polygons: list[Polygon],
    half: float,
    aspect: float,
    angle: float,
    cx: float,
    cy: float,
    h: int,
    w: int,
) -> _Mask | None:
    """Draw the polygons (scaled, stretched, rotated, placed) supersampled and box-filtered to
    an alpha mask; None when nothing of it lies in the frame."""
    cos, sin = math.cos(angle), math.sin(angle)
    placed = []
    for poly in polygons:
        p = poly.points * np.array([aspect, 1.0 / aspect]) * half
        rot = np.stack([p[:, 0] * cos - p[:, 1] * sin, p[:, 0] * sin + p[:, 1] * cos], 1)
        placed.append((rot + np.array([cx, cy]), poly.fill))
    outer = np.vstack([pts for pts, fill in placed if fill])
    x0, y0 = math.floor(outer[:, 0].min()) - 1, math.floor(outer[:, 1].min()) - 1
    x1, y1 = math.ceil(outer[:, 0].max()) + 1, math.ceil(outer[:, 1].max()) + 1
    f = 4 if max(x1 - x0, y1 - y0) < 160 else 2
    canvas = Image.new("L", ((x1 - x0) * f, (y1 - y0) * f), 0)
    draw = ImageDraw.Draw(canvas)
    for pts, fill in placed:
        local = (pts - np.array([x0, y0])) * f
        draw.polygon([(float(x), float(y)) for x, y in local], fill=fill)
    alpha = np.asarray(canvas.resize((x1 - x0, y1 - y0), Image.Resampling.BOX), np.float32)
    alpha = alpha / 255.0
    full = float(alpha.sum())
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x1, w), min(y1, h)
    if cx0 >= cx1 or cy0 >= cy1 or full <= 0:
        return None
    clipped = alpha[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
    return _Mask(np.ascontiguousarray(clipped), cx0, cy0, full)


def _tight_box(mask: _Mask) -> tuple[tuple[float, float, float, float], float] | None:
    """Box of alpha ≥ 0.5 (pixel edges) and the visible area; None if nothing is visible."""
    on = mask.alpha >= 0.5
    rows, cols = np.flatnonzero(on.any(1)), np.flatnonzero(on.any(0))
    if rows.size == 0:
        return None
    box = (
        float(mask.x0 + cols[0]),
        float(mask.y0 + rows[0]),
        float(mask.x0 + cols[-1] + 1),
        float(mask.y0 + rows[-1] + 1),
    )
    return box, float(mask.alpha.sum())


def _colour_against(rng: np.random.Generator, under: np.ndarray) -> np.ndarray | None:
    """A colour at least MIN_CONTRAST away from ``under`` [3], or None after a few tries."""
    for _ in range(10):
        c = rng.uniform(0, 255, 3).astype(np.float32)
        if float(np.linalg.norm(c - under)) >= MIN_CONTRAST:
            return c
    return None


def _paint(rng: np.random.Generator, img: np.ndarray, mask: _Mask, colour: np.ndarray) -> None:
    """Composite one object into ``img`` (in place): solid, shaded, striped or mottled fill,
    sometimes with an outline of another colour."""
    h, w = mask.alpha.shape
    region = img[mask.y0 : mask.y0 + h, mask.x0 : mask.x0 + w]
    kind = rng.random()
    layer = np.broadcast_to(colour, (h, w, 3)).astype(np.float32)
    if kind < 0.25:
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        ang = rng.uniform(0, math.pi)
        ramp = (x * math.cos(ang) + y * math.sin(ang)) / max(h, w)
        layer = layer * (1 + rng.uniform(-0.35, 0.35) * ramp[..., None])
    elif kind < 0.4:
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        ang, period = rng.uniform(0, math.pi), rng.uniform(3, 12)
        t = np.sin((x * math.cos(ang) + y * math.sin(ang)) * 2 * math.pi / period) > 0
        second = np.clip(colour + rng.uniform(-70, 70, 3), 0, 255).astype(np.float32)
        layer = np.where(t[..., None], layer, second)
    elif kind < 0.5:
        layer = layer + rng.normal(0, 18, (h, w, 1)).astype(np.float32)
    alpha = mask.alpha
    if rng.random() < 0.3 and min(h, w) > 10:
        eroded = Image.fromarray((alpha * 255).astype(np.uint8)).filter(
            ImageFilter.MinFilter(3 if min(h, w) < 60 else 5)
        )
        border = np.clip(alpha - np.asarray(eroded, np.float32) / 255.0, 0, 1)[..., None]
        edge = 255.0 - colour if rng.random() < 0.5 else rng.uniform(0, 255, 3)
        layer = layer * (1 - border) + edge.astype(np.float32) * border
    a = alpha[..., None]
    region[...] = region * (1 - a) + np.clip(layer, 0, 255) * a


def _image_size(rng: np.random.Generator) -> tuple[int, int]:
    long = int(rng.integers(LONG_SIDE[0], LONG_SIDE[1] + 1))
    short = round(long / float(rng.choice(ASPECTS)))
    return (long, short) if rng.random() < 0.5 else (short, long)


def generate_scene(seed: int, index: int) -> Scene:
    """Scene ``index`` of the stream ``seed`` (see the module docstring)."""
    rng = scene_rng(seed, index)
    h, w = _image_size(rng)
    img = background(rng, h, w)
    img = draw_distractors(rng, img, int(rng.integers(1, 9)))
    n_objects = 0 if rng.random() < 0.04 else int(rng.integers(1, MAX_OBJECTS + 1))
    masks: list[_Mask] = []
    visible: list[_Mask] = []
    classes: list[int] = []
    lo, hi = math.log(MIN_OBJECT_PX), math.log(0.9 * min(h, w))
    for _ in range(n_objects):
        for _attempt in range(12):
            class_id = int(rng.integers(len(CLASS_NAMES)))
            half = math.exp(rng.uniform(lo, hi)) / 2
            aspect = math.exp(rng.uniform(-0.3, 0.3))
            angle = rng.uniform(0, 2 * math.pi)
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
            mask = _rasterise(shape_polygons(class_id, rng), half, aspect, angle, cx, cy, h, w)
            if mask is None or mask.alpha.sum() < MIN_VISIBLE * mask.full_area:
                continue
            updated: list[tuple[int, np.ndarray]] = []
            for j, seen in enumerate(visible):
                win = seen.window(mask)
                if win is None:
                    continue
                ry, rx, oy, ox = win
                alpha = seen.alpha.copy()
                alpha[ry, rx] *= 1 - mask.alpha[oy, ox]
                updated.append((j, alpha))
            if any(a.sum() < MIN_VISIBLE * masks[j].full_area for j, a in updated):
                continue
            sub = img[
                mask.y0 : mask.y0 + mask.alpha.shape[0], mask.x0 : mask.x0 + mask.alpha.shape[1]
            ]
            weight = mask.alpha[..., None]
            under = (sub * weight).sum((0, 1)) / max(float(weight.sum()), 1e-6)
            colour = _colour_against(rng, under)
            if colour is None:
                continue
            for j, alpha in updated:
                visible[j].alpha = alpha
            _paint(rng, img, mask, colour)
            masks.append(mask)
            visible.append(_Mask(mask.alpha.copy(), mask.x0, mask.y0, mask.full_area))
            classes.append(class_id)
            break
    objects = []
    for class_id, seen in zip(classes, visible, strict=True):
        tight = _tight_box(seen)
        if tight is None:  # cannot happen with MIN_VISIBLE > 0.5, kept for safety
            continue
        box, area = tight
        objects.append(SceneObject(class_id, box, area, area / seen.full_area))
    image = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    quality = int(rng.integers(35, 96))
    return Scene(image, objects, quality, int(seed), int(index))


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """RGB uint8 [H, W, 3] → JPEG bytes (4:2:0, baseline)."""
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="JPEG", quality=int(quality))
    return out.getvalue()
