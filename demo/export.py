"""Writing generated scenes as a dataset: JPEG images, COCO JSON, YOLO txt, near-duplicates.

Layout (a folder, or the same members in a zip archive)::

    images/000000.jpg ...        JPEG, quality varied per scene (35–95)
    labels/000000.txt ...        YOLO: "class cx cy w h" per object, normalised to 0..1
    annotations.json             COCO: images, annotations (bbox x, y, w, h in pixels), categories
    classes.txt                  one class name per line (YOLO class index = line number)
    near_duplicates.json         planted near-duplicate images (pairs of file names + transform)
    near_duplicate_objects.json  planted near-duplicate objects (pairs: kind, image, box each)
    dataset.json                 seed, count, generator parameters

COCO category ids are the YOLO class index + 1 (COCO keeps 0 free). What is planted (image
copies every :data:`DUPLICATE_PERIOD`-th image; one pasted object per odd scene, exact, JPEG
re-encoded, resized or shifted) and how is described in :mod:`demo.planting`; the ground truth
of the planted objects is transformed accordingly, so clustering and deduplication can be
tested on known pairs.
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

from demo.planting import (
    DUPLICATE_PERIOD,
    PASTE_KINDS,
    PlantedScene,
    dataset_scene,
    duplicate_source,
    image_name,
    near_duplicate,
)
from demo.scenes import CLASS_NAMES, LONG_SIDE, MAX_OBJECTS, MIN_OBJECT_PX, Scene, encode_jpeg

__all__ = [
    "DUPLICATE_PERIOD",
    "DatasetSummary",
    "LabelledImage",
    "dataset_scene",
    "duplicate_source",
    "image_name",
    "near_duplicate",
    "read_coco_dataset",
    "write_dataset",
    "yolo_lines",
]


@dataclass
class DatasetSummary:
    """What was written: counts and the planted near-duplicates (image pairs, object pairs)."""

    images: int = 0
    objects: int = 0
    per_class: dict[str, int] = field(default_factory=dict)
    near_duplicates: list[dict[str, Any]] = field(default_factory=list)
    object_pairs: list[dict[str, Any]] = field(default_factory=list)


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


def _scenes(seed: int, n: int, plant_objects: bool) -> Iterator[tuple[int, PlantedScene]]:
    for index in range(n):
        yield index, dataset_scene(seed, index, plant_objects=plant_objects)


def write_dataset(
    out: Path,
    n: int,
    seed: int = 0,
    *,
    as_zip: bool = False,
    plant_objects: bool = True,
    progress: Callable[[int], None] | None = None,
) -> DatasetSummary:
    """Generate ``n`` scenes of ``seed`` into the folder ``out`` (or the zip archive ``out``).

    ``plant_objects``: paste near-duplicate objects (see :mod:`demo.planting`; image copies are
    always planted). ``progress(k)`` is called after each image. Returns the summary.
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
        for index, planted in _scenes(seed, n, plant_objects):
            scene = planted.scene
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
            if planted.image_copy is not None:
                summary.near_duplicates.append(planted.image_copy)
            summary.object_pairs.extend(planted.object_pairs)
            if progress is not None:
                progress(index + 1)
        members["annotations.json"] = json.dumps(coco).encode()
        members["classes.txt"] = "".join(c + "\n" for c in CLASS_NAMES).encode()
        members["near_duplicates.json"] = json.dumps(summary.near_duplicates, indent=1).encode()
        members["near_duplicate_objects.json"] = json.dumps(summary.object_pairs, indent=1).encode()
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
                "planted_objects": plant_objects,
                "paste_kinds": list(PASTE_KINDS) if plant_objects else [],
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
