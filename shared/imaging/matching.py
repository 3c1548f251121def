"""Do two crops show the same pixels? Alignment-searched colour cross-correlation.

A near-duplicate is the same pixels, possibly JPEG re-encoded, resized, or cut a little
differently (another detector box, a crop shifted by up to ~10 % of its size). Two objects of
the same class in other colours, or the same shape on another background, are not.

Each crop becomes a :class:`CropSignature`:

* ``template``: the box resized to ``SIZE`` x ``SIZE`` (area averaging: a resized or
  re-encoded copy becomes nearly the same small picture — JPEG noise and resampling differences
  average out);
* ``window``: the box widened by ``MARGIN`` of its width/height on each side (image edges
  replicated), resized so that the box maps onto the same ``SIZE`` x ``SIZE`` grid, i.e.
  ``SIZE + 2 * pad`` pixels square.

:func:`match_score` slides each crop's template, also stretched by ``SCALES`` per axis (a box
cut ≤ 10 % on one side stretches the content by that much once resized), over the other's
window (shifts up to ``pad`` pixels = ``MARGIN`` of the box) and keeps the best normalised
cross-correlation (``cv2.TM_CCOEFF_NORMED`` on the three colour channels: the mean of each
channel removed, one norm over all three). It is 1 for identical pictures, insensitive to a
change of brightness or contrast, and drops when colours differ (the channels no longer move
together) or when the pixels are not the same (another background, another texture, another
instance). Both directions are tried and the larger kept, so the score is symmetric.

Cross-correlation ignores each channel's mean, so a flat-coloured shape and the same shape in a
similar but shifted colour can still correlate well; :func:`confirm_score` therefore first
requires the crops' mean colours to lie within ``MAX_COLOUR_SHIFT``.

Array contract: images are RGB uint8 ``[h, w, 3]``; boxes ``(x1, y1, x2, y2)`` in pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

SIZE = 32
MARGIN = 0.125
SCALES: tuple[float, ...] = (0.9, 0.95, 1.0, 1.05, 1.1)
PAD = math.ceil(SIZE * MARGIN)
# Mean-colour gate (RGB distance): a copy keeps its colours (brightness ±10 % moves the mean
# by up to ~25); a same-shape object of another colour does not. Calibrated with the bench.
MAX_COLOUR_SHIFT = 30.0


@dataclass(frozen=True)
class CropSignature:
    """``template`` uint8 [SIZE, SIZE, 3]; ``window`` uint8 [SIZE + 2 PAD, SIZE + 2 PAD, 3]."""

    template: np.ndarray
    window: np.ndarray


def crop_signature(image: np.ndarray, box: tuple[float, float, float, float]) -> CropSignature:
    """The signature of ``box`` in RGB uint8 [h, w, 3] ``image``; a box is clamped to the image
    and widened to at least one pixel (so a degenerate box still gives a signature)."""
    h, w = image.shape[:2]
    x1 = min(max(0.0, float(box[0])), w - 1.0)
    y1 = min(max(0.0, float(box[1])), h - 1.0)
    x2 = min(max(x1 + 1.0, float(box[2])), float(w))
    y2 = min(max(y1 + 1.0, float(box[3])), float(h))
    bw, bh = x2 - x1, y2 - y1
    # The window: PAD output pixels of context per side = PAD / SIZE of the box's size.
    mx, my = bw * PAD / SIZE, bh * PAD / SIZE
    wx1, wy1 = math.floor(x1 - mx), math.floor(y1 - my)
    wx2, wy2 = math.ceil(x2 + mx), math.ceil(y2 + my)
    border = max(0, -wx1, -wy1, wx2 - w, wy2 - h)
    padded = (
        cv2.copyMakeBorder(image, border, border, border, border, cv2.BORDER_REPLICATE)
        if border
        else image
    )
    region = padded[wy1 + border : wy2 + border, wx1 + border : wx2 + border]
    # Whole pixels: the rounding moves the box by under a pixel of the original, which the
    # shift search absorbs. Downscaling averages (area) to keep JPEG noise and aliasing out.
    out = SIZE + 2 * PAD
    shrink = region.shape[0] > out and region.shape[1] > out
    window = cv2.resize(
        np.ascontiguousarray(region),
        (out, out),
        interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR,
    )
    template = np.ascontiguousarray(window[PAD : PAD + SIZE, PAD : PAD + SIZE])
    return CropSignature(template=template, window=window)


def mean_colour(signature: CropSignature) -> np.ndarray:
    """float64 [3] mean RGB of the crop (its template)."""
    return np.asarray(signature.template.reshape(-1, 3).mean(0), np.float64)


def colour_distance(a: CropSignature, b: CropSignature) -> float:
    """Euclidean distance of the two crops' mean RGB colours (0..441)."""
    return float(np.linalg.norm(mean_colour(a) - mean_colour(b)))


@dataclass(frozen=True)
class PreparedCrop:
    """A signature ready for matching: the window and the stretched templates (float32)."""

    window: np.ndarray
    templates: tuple[np.ndarray, ...]
    colour: np.ndarray


def prepare(signature: CropSignature) -> PreparedCrop:
    t = signature.template.astype(np.float32)
    templates = []
    for sy in SCALES:
        for sx in SCALES:
            size = (round(SIZE * sx), round(SIZE * sy))
            scaled = (
                t if size == (SIZE, SIZE) else cv2.resize(t, size, interpolation=cv2.INTER_LINEAR)
            )
            if float(scaled.std()) >= 1e-3:  # a flat template correlates with nothing
                templates.append(scaled)
    return PreparedCrop(
        window=signature.window.astype(np.float32),
        templates=tuple(templates),
        colour=mean_colour(signature),
    )


def _one_way(a: PreparedCrop, b: PreparedCrop) -> float:
    best = -1.0
    for template in a.templates:
        if template.shape[0] <= b.window.shape[0] and template.shape[1] <= b.window.shape[1]:
            score = cv2.matchTemplate(b.window, template, cv2.TM_CCOEFF_NORMED)
            best = max(best, float(score.max()))
    return best


def match_score(a: CropSignature | PreparedCrop, b: CropSignature | PreparedCrop) -> float:
    """Best normalised cross-correlation of the two crops over shifts up to ``MARGIN`` of the
    box and stretches ``SCALES`` per axis, both directions; in [-1, 1] (-1: nothing to
    correlate, e.g. a flat crop)."""
    pa = a if isinstance(a, PreparedCrop) else prepare(a)
    pb = b if isinstance(b, PreparedCrop) else prepare(b)
    return max(_one_way(pa, pb), _one_way(pb, pa))


def confirm_score(a: PreparedCrop, b: PreparedCrop) -> float:
    """:func:`match_score`, or -1 when the mean colours differ by more than
    ``MAX_COLOUR_SHIFT`` (checked first: it is cheap and rejects most candidates)."""
    if float(np.linalg.norm(a.colour - b.colour)) > MAX_COLOUR_SHIFT:
        return -1.0
    return match_score(a, b)
