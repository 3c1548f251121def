"""Writing generated scenes as a dataset: JPEG images, COCO JSON, YOLO txt, near-duplicates.

Layout (a folder, or the same members in a zip archive)::

    images/000000.jpg ...        JPEG, quality varied per scene (35–95)
    labels/000000.txt ...        YOLO: "class cx cy w h" per object, normalised to 0..1
    annotations.json             COCO: images, annotations (bbox x, y, w, h in pixels), categories
    classes.txt                  one class name per line (YOLO class index = line number)
    near_duplicates.json         planted near-duplicate pairs (see below)
    dataset.json                 seed, count, generator parameters

COCO category ids are the YOLO class index + 1 (COCO keeps 0 free). Every
:data:`DUPLICATE_PERIOD`-th image (index ≡ PERIOD−1) is not a new scene but a near-duplicate
of an earlier one (rescaled 80–97 %, cropped up to 4 % per side, brightness ±10 %, another
JPEG quality), with its ground truth transformed accordingly, so clustering and
deduplication can be tested on known pairs.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from demo.scenes import (
    CLASS_NAMES,
    LONG_SIDE,
    MAX_OBJECTS,
    MIN_OBJECT_PX,
    Scene,
    SceneObject,
    encode_jpeg,
    generate_scene,
    scene_rng,
)

DUPLICATE_PERIOD = 40
DUPLICATE_LOOKBACK = 30


@dataclass
class DatasetSummary:
    """What was written: counts and the planted near-duplicate pairs (file names)."""

    images: int = 0
    objects: int = 0
    per_class: dict[str, int] = field(default_factory=dict)
    near_duplicates: list[dict[str, Any]] = field(default_factory=list)


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
    """A rescaled, cropped, re-lit copy of ``scene`` as scene ``index`` (+ the transform)."""
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
    for o in scene.objects:
        x1, y1, x2, y2 = (v * scale for v in o.box)
        x1, x2 = max(x1 - left, 0.0), min(x2 - left, float(w))
        y1, y2 = max(y1 - top, 0.0), min(y2 - top, float(h))
        if x2 - x1 >= 2 and y2 - y1 >= 2:
            # mask area scales like the box (×scale², then the crop's share; assumes the
            # mask is cut like its box)
            box_area = (o.box[2] - o.box[0]) * (o.box[3] - o.box[1])
            area = o.area * (x2 - x1) * (y2 - y1) / box_area
            objects.append(SceneObject(o.class_id, (x1, y1, x2, y2), area, o.visible))
    quality = int((scene.jpeg_quality + rng.integers(10, 40) - 35) % 61 + 35)
    transform = {"scale": scale, "crop_ltrb": crop, "brightness": brightness, "quality": quality}
    return Scene(image, objects, quality, seed, index), transform


def dataset_scene(seed: int, index: int) -> tuple[Scene, dict[str, Any] | None]:
    """Scene ``index`` of a written dataset: a fresh scene or a planted near-duplicate."""
    src = duplicate_source(seed, index)
    if src is None:
        return generate_scene(seed, index), None
    dup, transform = near_duplicate(generate_scene(seed, src), seed, index)
    return dup, {"original": image_name(src), "duplicate": image_name(index), **transform}


def yolo_lines(scene: Scene) -> str:
    h, w = scene.image.shape[:2]
    rows = []
    for o in scene.objects:
        x1, y1, x2, y2 = o.box
        rows.append(
            f"{o.class_id} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} "
            f"{(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}"
        )
    return "".join(r + "\n" for r in rows)


def _scenes(seed: int, n: int) -> Iterator[tuple[int, Scene, dict[str, Any] | None]]:
    for index in range(n):
        scene, dup = dataset_scene(seed, index)
        yield index, scene, dup


def write_dataset(
    out: Path,
    n: int,
    seed: int = 0,
    *,
    as_zip: bool = False,
    progress: Callable[[int], None] | None = None,
) -> DatasetSummary:
    """Generate ``n`` scenes of ``seed`` into the folder ``out`` (or the zip archive ``out``).

    ``progress(k)`` is called after each image. Returns the summary.
    """
    if n < 0:
        raise ValueError(f"n must be ≥ 0, got {n}")
    out = Path(out)
    summary = DatasetSummary(per_class=dict.fromkeys(CLASS_NAMES, 0))
    coco: dict[str, Any] = {
        "info": {"description": "roisearch demo scenes", "seed": seed},
        "images": [],
        "annotations": [],
        "categories": [
            {"id": i + 1, "name": name, "supercategory": "shape"}
            for i, name in enumerate(CLASS_NAMES)
        ],
    }
    members: dict[str, bytes] = {}
    archive = zipfile.ZipFile(out, "w") if as_zip else None

    def put(name: str, data: bytes) -> None:
        if archive is not None:
            kind = zipfile.ZIP_STORED if name.endswith(".jpg") else zipfile.ZIP_DEFLATED
            archive.writestr(name, data, compress_type=kind)
        else:
            path = out / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    if archive is None:
        out.mkdir(parents=True, exist_ok=True)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
    try:
        for index, scene, dup in _scenes(seed, n):
            name = image_name(index)
            put(name, encode_jpeg(scene.image, scene.jpeg_quality))
            put(f"labels/{index:06d}.txt", yolo_lines(scene).encode())
            h, w = scene.image.shape[:2]
            coco["images"].append({"id": index + 1, "file_name": name, "width": w, "height": h})
            for o in scene.objects:
                x1, y1, x2, y2 = o.box
                coco["annotations"].append(
                    {
                        "id": len(coco["annotations"]) + 1,
                        "image_id": index + 1,
                        "category_id": o.class_id + 1,
                        "bbox": [x1, y1, x2 - x1, y2 - y1],
                        "area": round(o.area, 2),
                        "iscrowd": 0,
                        "visible_fraction": round(o.visible, 4),
                    }
                )
                summary.per_class[CLASS_NAMES[o.class_id]] += 1
            summary.images += 1
            summary.objects += len(scene.objects)
            if dup is not None:
                summary.near_duplicates.append(dup)
            if progress is not None:
                progress(index + 1)
        members["annotations.json"] = json.dumps(coco).encode()
        members["classes.txt"] = "".join(c + "\n" for c in CLASS_NAMES).encode()
        members["near_duplicates.json"] = json.dumps(summary.near_duplicates, indent=1).encode()
        members["dataset.json"] = json.dumps(
            {
                "seed": seed,
                "images": n,
                "objects": summary.objects,
                "classes": list(CLASS_NAMES),
                "long_side_px": list(LONG_SIDE),
                "min_object_px": MIN_OBJECT_PX,
                "max_objects": MAX_OBJECTS,
                "duplicate_period": DUPLICATE_PERIOD,
            },
            indent=1,
        ).encode()
        for name, data in members.items():
            put(name, data)
    finally:
        if archive is not None:
            archive.close()
    return summary


@dataclass
class LabelledImage:
    """One image of a written dataset: RGB uint8 [H, W, 3], boxes float32 [N, 4] x1y1x2y2
    pixels, classes int64 [N]."""

    name: str
    image: np.ndarray
    boxes: np.ndarray
    classes: np.ndarray


def read_coco_dataset(root: Path) -> list[LabelledImage]:
    """Read a folder written by :func:`write_dataset` back through its COCO file."""
    root = Path(root)
    coco = json.loads((root / "annotations.json").read_text())
    per_image: dict[int, list[dict[str, Any]]] = {}
    for ann in coco["annotations"]:
        per_image.setdefault(ann["image_id"], []).append(ann)
    items = []
    for entry in coco["images"]:
        anns = per_image.get(entry["id"], [])
        boxes = np.array(
            [
                [
                    a["bbox"][0],
                    a["bbox"][1],
                    a["bbox"][0] + a["bbox"][2],
                    a["bbox"][1] + a["bbox"][3],
                ]
                for a in anns
            ],
            np.float32,
        ).reshape(-1, 4)
        classes = np.array([a["category_id"] - 1 for a in anns], np.int64)
        data = (root / entry["file_name"]).read_bytes()
        image = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        items.append(LabelledImage(entry["file_name"], image, boxes, classes))
    return items
