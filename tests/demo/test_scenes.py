"""The scene generator: deterministic from its seed, boxes tight around what is drawn."""

from __future__ import annotations

import numpy as np
import pytest

import demo.scenes as scenes
from demo.scenes import CLASS_NAMES, MAX_OBJECTS, MIN_VISIBLE, generate_scene

GREY = 114.0


def test_same_seed_and_index_give_the_same_scene() -> None:
    a, b = generate_scene(7, 3), generate_scene(7, 3)
    assert np.array_equal(a.image, b.image)
    assert a.objects == b.objects
    assert a.jpeg_quality == b.jpeg_quality


def test_other_seed_or_index_give_other_scenes() -> None:
    base = generate_scene(7, 3)
    for other in (generate_scene(8, 3), generate_scene(7, 4)):
        assert other.image.shape != base.image.shape or not np.array_equal(other.image, base.image)


def test_scenes_vary_and_boxes_lie_inside_the_image() -> None:
    shapes, counts, classes, sides = set(), [], set(), []
    for index in range(40):
        scene = generate_scene(0, index)
        h, w = scene.image.shape[:2]
        shapes.add((h, w))
        counts.append(len(scene.objects))
        assert scene.image.dtype == np.uint8 and scene.image.shape[2] == 3
        for o in scene.objects:
            x1, y1, x2, y2 = o.box
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h, (index, o)
            assert MIN_VISIBLE <= o.visible <= 1.0 + 1e-6
            classes.add(o.class_id)
            sides.append(max(x2 - x1, y2 - y1))
        assert 35 <= scene.jpeg_quality <= 95
    assert len(shapes) > 30  # sizes and aspect ratios vary
    assert any(h > w for h, w in shapes) and any(w > h for h, w in shapes)
    assert max(counts) <= MAX_OBJECTS and min(counts) >= 0 and max(counts) >= 10
    assert classes == set(range(len(CLASS_NAMES)))
    assert min(sides) < 24 and max(sides) > 150


def _flat_scene(monkeypatch: pytest.MonkeyPatch, index: int, marked: int, level: float):  # type: ignore[no-untyped-def]
    """Scene ``index`` on a flat background without distractors; object number ``marked``
    painted in grey ``level``, every other object in a fixed colour."""
    counter = [0]

    def paint(rng, img, mask, colour):  # type: ignore[no-untyped-def]
        h, w = mask.alpha.shape
        region = img[mask.y0 : mask.y0 + h, mask.x0 : mask.x0 + w]
        c = np.full(3, level, np.float32) if counter[0] == marked else np.array([200, 40, 90])
        counter[0] += 1
        a = mask.alpha[..., None]
        region[...] = region * (1 - a) + c * a

    monkeypatch.setattr(scenes, "background", lambda rng, h, w: np.full((h, w, 3), GREY))
    monkeypatch.setattr(scenes, "draw_distractors", lambda rng, img, n: img)
    monkeypatch.setattr(scenes, "_paint", paint)
    # the contrast check would otherwise draw colours depending on the marked object's grey
    monkeypatch.setattr(scenes, "_colour_against", lambda rng, under: np.zeros(3, np.float32))
    return generate_scene(11, index)


@pytest.mark.parametrize("index", range(8))
def test_boxes_are_tight_around_the_visible_pixels(
    monkeypatch: pytest.MonkeyPatch, index: int
) -> None:
    """Render the scene twice with one object black, then white, all else equal: the pixels
    that change by at least half the range are where that object shows with alpha ≥ 0.5
    (occluded parts do not change). Their extent must be the object's box (±1 px where
    alpha is within rounding of 0.5)."""
    first = _flat_scene(monkeypatch, index, -1, 0.0)
    for k, o in enumerate(first.objects):
        dark = _flat_scene(monkeypatch, index, k, 0.0).image.astype(np.int16)
        light = _flat_scene(monkeypatch, index, k, 255.0).image.astype(np.int16)
        ys, xs = np.nonzero((light - dark).min(-1) >= 127)
        assert len(xs), f"object {k} is not visible at all"
        drawn = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        for got, want in zip(drawn, o.box, strict=True):
            assert abs(got - want) <= 1, (k, drawn, o.box)
