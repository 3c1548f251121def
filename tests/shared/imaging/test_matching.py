"""Crop confirmation: the same pixels re-encoded, resized or cut a little differently match;
the same shape in another colour, or on another background, does not."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from demo.backgrounds import background
from demo.scenes import scene_rng
from shared.imaging.matching import (
    MAX_COLOUR_SHIFT,
    colour_distance,
    confirm_score,
    crop_signature,
    match_score,
    prepare,
)
from shared.reports.params import DUPLICATE_MATCH

THRESHOLD = DUPLICATE_MATCH  # the report's default
BOX = (60.0, 50.0, 124.0, 110.0)  # 64 x 60 px


def _scene(seed: int, colour: tuple[int, int, int], *, stripes: bool = True) -> np.ndarray:
    """A textured background with a striped star-like polygon inside BOX."""
    rng = scene_rng(seed, 0)
    img = background(rng, 180, 200)

    layer = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(layer)
    cx, cy = 92, 80
    points = []
    for k in range(10):
        radius = 30 if k % 2 == 0 else 13
        angle = -np.pi / 2 + k * np.pi / 5
        points.append((cx + radius * np.cos(angle), cy + radius * np.sin(angle)))
    draw.polygon(points, fill=colour)
    array = np.asarray(layer).copy()
    if stripes:  # a texture inside the shape, so that its pixels are its own
        y, x = np.mgrid[0:180, 0:200]
        band = ((x + y) // 5) % 2 == 0
        mask = np.all(array == np.array(colour, np.uint8), axis=2) & band
        array[mask] = np.clip(np.array(colour) * 0.6, 0, 255).astype(np.uint8)
    return array


def _jpeg(array: np.ndarray, quality: int) -> np.ndarray:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(out.getvalue())).convert("RGB"))


def _resized(array: np.ndarray, factor: float) -> np.ndarray:
    h, w = array.shape[:2]
    size = (round(w * factor), round(h * factor))
    return np.asarray(Image.fromarray(array).resize(size, Image.Resampling.BILINEAR))


def _score(a: np.ndarray, box_a: tuple, b: np.ndarray, box_b: tuple) -> float:
    return confirm_score(prepare(crop_signature(a, box_a)), prepare(crop_signature(b, box_b)))


@pytest.fixture(scope="module")
def original() -> np.ndarray:
    return _scene(1, (220, 60, 40))


def test_the_same_crop_matches_itself_perfectly(original: np.ndarray) -> None:
    assert _score(original, BOX, original, BOX) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("quality", [15, 35, 70])
def test_a_jpeg_re_encoded_copy_is_confirmed(original: np.ndarray, quality: int) -> None:
    assert _score(original, BOX, _jpeg(original, quality), BOX) >= THRESHOLD


@pytest.mark.parametrize("factor", [0.5, 0.7, 1.4, 2.0])
def test_a_resized_copy_is_confirmed(original: np.ndarray, factor: float) -> None:
    box = tuple(v * factor for v in BOX)
    assert _score(original, BOX, _resized(original, factor), box) >= THRESHOLD


@pytest.mark.parametrize("dx, dy", [(0.1, 0.0), (0.0, -0.1), (-0.08, 0.08), (0.05, 0.05)])
def test_a_shifted_crop_is_confirmed(original: np.ndarray, dx: float, dy: float) -> None:
    w, h = BOX[2] - BOX[0], BOX[3] - BOX[1]
    shifted = (BOX[0] + dx * w, BOX[1] + dy * h, BOX[2] + dx * w, BOX[3] + dy * h)
    assert _score(original, BOX, original, shifted) >= THRESHOLD


def test_a_box_cut_by_ten_percent_is_confirmed(original: np.ndarray) -> None:
    w = BOX[2] - BOX[0]
    cut = (BOX[0] + 0.1 * w, BOX[1], BOX[2], BOX[3])  # the copy lost a tenth on the left
    assert _score(original, BOX, _jpeg(original, 50), cut) >= THRESHOLD


def test_the_same_shape_in_another_colour_is_rejected(original: np.ndarray) -> None:
    other = _scene(1, (40, 90, 220))  # same background, same star, blue instead of red
    a, b = crop_signature(original, BOX), crop_signature(other, BOX)
    assert colour_distance(a, b) > MAX_COLOUR_SHIFT
    assert _score(original, BOX, other, BOX) < THRESHOLD


def test_the_same_shape_and_colour_on_another_background_is_rejected(
    original: np.ndarray,
) -> None:
    other = _scene(2, (220, 60, 40))  # the same red star on another textured background
    assert match_score(crop_signature(original, BOX), crop_signature(other, BOX)) < THRESHOLD
    assert _score(original, BOX, other, BOX) < THRESHOLD


def test_the_score_is_symmetric(original: np.ndarray) -> None:
    copy = _resized(_jpeg(original, 40), 0.6)
    box = (BOX[0] * 0.6, BOX[1] * 0.6, BOX[2] * 0.6, BOX[3] * 0.6)
    a, b = crop_signature(original, BOX), crop_signature(copy, box)
    assert match_score(a, b) == pytest.approx(match_score(b, a))


def test_a_flat_crop_matches_nothing() -> None:
    flat = np.full((100, 100, 3), 128, np.uint8)
    assert match_score(crop_signature(flat, BOX), crop_signature(flat, BOX)) == -1.0


def test_boxes_at_and_beyond_the_edge_still_give_a_signature(original: np.ndarray) -> None:
    h, w = original.shape[:2]
    for box in [(0.0, 0.0, 30.0, 30.0), (w - 20.0, h - 20.0, w + 5.0, h + 5.0), (5, 5, 5, 5)]:
        signature = crop_signature(original, box)
        assert signature.template.shape == (32, 32, 3)
        assert signature.window.shape == (40, 40, 3)
