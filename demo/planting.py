"""Near-duplicates planted in a written dataset, with their ground truth.

Two kinds, both pure functions of ``(seed, index)``:

* **Image copies.** Every :data:`DUPLICATE_PERIOD`-th image (index ≡ PERIOD−1) is not a new
  scene but a near-duplicate of an earlier one (rescaled 80–97 %, cropped up to 4 % per side,
  brightness ±10 %, another JPEG quality), its ground truth transformed accordingly; each
  object it keeps is also recorded as an object pair of kind ``image``.
* **Object pastes** (``plant_objects``). Each odd-numbered scene that is not an image copy gets
  one object of an earlier even-numbered scene (never pasted into, never a copy) pasted as a
  rectangular patch on free ground (overlapping none of its own objects). The kind cycles with
  the index (:data:`PASTE_KINDS`):

  - ``exact``: the object's pixels with a 12 % margin of its own background, unchanged;
  - ``jpeg``: the same patch re-encoded as JPEG at quality 12–30 before pasting;
  - ``resized``: the patch resized by a factor in 0.5–0.8 or 1.25–2 (log-uniform);
  - ``shifted``: the object's box shifted by 4–10 % of its width and height (no margin), so
    the copy loses that much of the object on one side and shows source background on the
    other — a slightly different crop of the same pixels.

  The pasted object is a new labelled object of the target scene (its box: the source box under
  the paste, cut to the window for ``shifted``).

A source window never reaches into another labelled object of its scene (no fragment of a
second object travels with the paste). Pairs are recorded with image names and boxes; a
pasted scene that is later copied as an image gives chains (a → b → c): ground truth is the
transitive closure.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from demo.scenes import MIN_OBJECT_PX, Scene, SceneObject, encode_jpeg, generate_scene, scene_rng

DUPLICATE_PERIOD = 40
DUPLICATE_LOOKBACK = 30
PASTE_KINDS: tuple[str, ...] = ("exact", "jpeg", "resized", "shifted")
PASTE_LOOKBACK = 6  # source scenes: the even ones among the previous 2 * PASTE_LOOKBACK
PASTE_MARGIN = 0.12  # of the box's width/height, each side (not for ``shifted``)
PASTE_TRIES = 40  # positions tried per candidate object
MAX_PATCH_SHARE = 0.6  # of the target's width/height
MIN_PASTE_PX = 24  # smallest side of a pasted object


@dataclass
class PlantedScene:
    """A dataset scene with what was planted in it: the image copy it is (if any) and the
    object pairs whose duplicate lies in it (``original``/``duplicate``: image name, object
    index, box)."""

    scene: Scene
    image_copy: dict[str, Any] | None = None
    object_pairs: list[dict[str, Any]] = field(default_factory=list)


def image_name(index: int) -> str:
    return f"images/{index:06d}.jpg"


def duplicate_source(seed: int, index: int) -> int | None:
    """The earlier scene that image ``index`` duplicates, or None for an ordinary scene.

    The look-back window is shorter than the period, so a source is never itself a copy."""
    if index % DUPLICATE_PERIOD != DUPLICATE_PERIOD - 1:
        return None
    rng = scene_rng(seed, index)
    return index - int(rng.integers(1, min(index, DUPLICATE_LOOKBACK) + 1))


def near_duplicate(scene: Scene, seed: int, index: int) -> tuple[Scene, dict[str, Any]]:
    """A rescaled, cropped, re-lit copy of ``scene`` as scene ``index`` (+ the transform;
    ``kept``: indices of the source objects the copy still shows, in order)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 1]))
    h0, w0 = scene.image.shape[:2]
    scale = float(rng.uniform(0.8, 0.97))
    w1, h1 = round(w0 * scale), round(h0 * scale)
    crop = [int(rng.integers(0, max(1, round(0.04 * s)) + 1)) for s in (w1, h1, w1, h1)]
    left, top, right, bottom = crop
    resized = Image.fromarray(scene.image).resize((w1, h1), Image.Resampling.BILINEAR)
    cropped = np.asarray(resized.crop((left, top, w1 - right, h1 - bottom)), np.float32)
    brightness = float(rng.uniform(0.9, 1.1))
    image = np.clip(np.rint(cropped * brightness), 0, 255).astype(np.uint8)
    h, w = image.shape[:2]
    objects = []
    kept = []
    for n, o in enumerate(scene.objects):
        x1, y1, x2, y2 = (v * scale for v in o.box)
        x1, x2 = max(x1 - left, 0.0), min(x2 - left, float(w))
        y1, y2 = max(y1 - top, 0.0), min(y2 - top, float(h))
        if x2 - x1 >= 2 and y2 - y1 >= 2:
            # mask area scales like the box (×scale², then the crop's share; assumes the
            # mask is cut like its box)
            box_area = (o.box[2] - o.box[0]) * (o.box[3] - o.box[1])
            area = o.area * (x2 - x1) * (y2 - y1) / box_area
            objects.append(SceneObject(o.class_id, (x1, y1, x2, y2), area, o.visible))
            kept.append(n)
    quality = int((scene.jpeg_quality + rng.integers(10, 40) - 35) % 61 + 35)
    transform = {
        "scale": scale,
        "crop_ltrb": crop,
        "brightness": brightness,
        "quality": quality,
        "kept": kept,
    }
    return Scene(image, objects, quality, seed, index), transform


def _overlaps(a: tuple[float, ...], b: tuple[float, ...], pad: float = 0.0) -> bool:
    return a[0] < b[2] + pad and b[0] - pad < a[2] and a[1] < b[3] + pad and b[1] - pad < a[3]


def _window(
    rng: np.random.Generator, kind: str, box: tuple[float, ...], w: int, h: int
) -> tuple[int, int, int, int] | None:
    """The source window (x1, y1, x2, y2, whole pixels) of the patch, or None if it leaves
    the image."""
    x1, y1, x2, y2 = math.floor(box[0]), math.floor(box[1]), math.ceil(box[2]), math.ceil(box[3])
    bw, bh = x2 - x1, y2 - y1
    if kind == "shifted":
        dx = round(bw * rng.uniform(0.04, 0.1)) * (1 if rng.random() < 0.5 else -1)
        dy = round(bh * rng.uniform(0.04, 0.1)) * (1 if rng.random() < 0.5 else -1)
        window = (x1 + dx, y1 + dy, x2 + dx, y2 + dy)
    else:
        mx, my = round(PASTE_MARGIN * bw), round(PASTE_MARGIN * bh)
        window = (x1 - mx, y1 - my, x2 + mx, y2 + my)
    if window[0] < 0 or window[1] < 0 or window[2] > w or window[3] > h:
        return None
    return window


def _transform_patch(
    rng: np.random.Generator, kind: str, patch: np.ndarray
) -> tuple[np.ndarray, dict[str, Any]]:
    if kind == "jpeg":
        quality = int(rng.integers(12, 31))
        data = encode_jpeg(patch, quality)
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), {"quality": quality}
    if kind == "resized":
        up = rng.random() < 0.5
        lo, hi = (1.25, 2.0) if up else (0.5, 0.8)
        scale = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        size = (max(1, round(patch.shape[1] * scale)), max(1, round(patch.shape[0] * scale)))
        resized = Image.fromarray(patch).resize(size, Image.Resampling.BILINEAR)
        return np.asarray(resized), {"scale": round(scale, 4)}
    return patch, {}


def _paste(seed: int, index: int, target: Scene) -> dict[str, Any] | None:
    """Paste one object of an earlier even scene into ``target`` (in place); the pair, or
    None when no object fits anywhere free."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 2]))
    kind = PASTE_KINDS[(index // 2) % len(PASTE_KINDS)]
    th, tw = target.image.shape[:2]
    sources = [index - 1 - 2 * k for k in range(PASTE_LOOKBACK) if index - 1 - 2 * k >= 0]
    for src in [int(s) for s in rng.permutation(sources)]:
        source = generate_scene(seed, src)
        sh, sw = source.image.shape[:2]
        for j in [int(j) for j in rng.permutation(len(source.objects))]:
            obj = source.objects[j]
            if min(obj.box[2] - obj.box[0], obj.box[3] - obj.box[1]) < MIN_PASTE_PX:
                continue
            window = _window(rng, kind, obj.box, sw, sh)
            if window is None or any(
                _overlaps(window, o.box) for n, o in enumerate(source.objects) if n != j
            ):
                continue
            patch, params = _transform_patch(
                rng, kind, source.image[window[1] : window[3], window[0] : window[2]]
            )
            ph, pw = patch.shape[:2]
            scale = pw / (window[2] - window[0])
            box = (
                max(obj.box[0], window[0]),
                max(obj.box[1], window[1]),
                min(obj.box[2], window[2]),
                min(obj.box[3], window[3]),
            )
            if min(box[2] - box[0], box[3] - box[1]) * scale < MIN_OBJECT_PX:
                continue
            if pw > MAX_PATCH_SHARE * tw or ph > MAX_PATCH_SHARE * th:
                continue
            for _ in range(PASTE_TRIES):
                x0, y0 = int(rng.integers(0, tw - pw + 1)), int(rng.integers(0, th - ph + 1))
                spot = (x0, y0, x0 + pw, y0 + ph)
                if any(_overlaps(spot, o.box, pad=2.0) for o in target.objects):
                    continue
                target.image[y0 : y0 + ph, x0 : x0 + pw] = patch
                placed = (
                    x0 + (box[0] - window[0]) * scale,
                    y0 + (box[1] - window[1]) * scale,
                    x0 + (box[2] - window[0]) * scale,
                    y0 + (box[3] - window[1]) * scale,
                )
                cut = (box[2] - box[0]) * (box[3] - box[1])
                whole = (obj.box[2] - obj.box[0]) * (obj.box[3] - obj.box[1])
                target.objects.append(
                    SceneObject(
                        obj.class_id, placed, obj.area * cut / whole * scale**2, obj.visible
                    )
                )
                return {
                    "kind": kind,
                    "original": {"image": image_name(src), "object": j, "box": list(obj.box)},
                    "duplicate": {
                        "image": image_name(index),
                        "object": len(target.objects) - 1,
                        "box": [round(v, 3) for v in placed],
                    },
                    "source_window": list(window),
                    **params,
                }
    return None


def _base_scene(seed: int, index: int, plant_objects: bool) -> PlantedScene:
    scene = generate_scene(seed, index)
    planted = PlantedScene(scene)
    if plant_objects and index % 2 == 1:
        pair = _paste(seed, index, scene)
        if pair is not None:
            planted.object_pairs.append(pair)
    return planted


def dataset_scene(seed: int, index: int, *, plant_objects: bool = True) -> PlantedScene:
    """Scene ``index`` of a written dataset: a fresh scene (with a pasted object, for odd
    indices with ``plant_objects``) or a planted image copy."""
    src = duplicate_source(seed, index)
    if src is None:
        return _base_scene(seed, index, plant_objects)
    original = _base_scene(seed, src, plant_objects).scene
    dup, transform = near_duplicate(original, seed, index)
    pairs = [
        {
            "kind": "image",
            "original": {
                "image": image_name(src),
                "object": o,
                "box": list(original.objects[o].box),
            },
            "duplicate": {"image": image_name(index), "object": n, "box": list(dup.objects[n].box)},
        }
        for n, o in enumerate(transform["kept"])
    ]
    copy = {"original": image_name(src), "duplicate": image_name(index), **transform}
    del copy["kept"]
    return PlantedScene(dup, copy, pairs)
