"""COCO ``instances``-style JSON: ``images`` (id, file_name), ``annotations`` (image_id,
category_id, bbox ``[x, y, w, h]`` in pixels) and ``categories`` (id, name)."""

from __future__ import annotations

import json
from typing import Any

from shared.annotations.model import INVALID, AnnotationError, LabelBox


def looks_like_coco(data: bytes) -> bool:
    """Cheap test before parsing: the keys every instances file has."""
    return b'"annotations"' in data and b'"images"' in data


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError
    return float(value)


def parse(member: str, data: bytes) -> dict[str, list[LabelBox]]:
    """``file_name`` → its boxes (an image listed without annotations maps to no boxes).

    Raises ``annotation_invalid`` (naming the first bad entry) for anything else."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AnnotationError(INVALID, f"{member}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or not all(
        isinstance(doc.get(k), list) for k in ("images", "annotations")
    ):
        raise AnnotationError(INVALID, f"{member}: expected lists 'images' and 'annotations'")
    try:
        categories = {c["id"]: str(c["name"]) for c in doc.get("categories") or []}
    except (TypeError, KeyError):
        raise AnnotationError(INVALID, f"{member}: a category lacks 'id' or 'name'") from None
    files: dict[Any, str] = {}
    for n, image in enumerate(doc["images"]):
        if not isinstance(image, dict) or not isinstance(image.get("file_name"), str):
            raise AnnotationError(INVALID, f"{member}: images[{n}] has no 'file_name'")
        files[image.get("id")] = image["file_name"]
    boxes: dict[str, list[LabelBox]] = {name: [] for name in files.values()}
    for n, ann in enumerate(doc["annotations"]):
        where = f"{member}: annotations[{n}]"
        if not isinstance(ann, dict) or ann.get("image_id") not in files:
            raise AnnotationError(INVALID, f"{where} names no image of the file")
        if ann.get("category_id") not in categories:
            raise AnnotationError(INVALID, f"{where} names no category of the file")
        bbox = ann.get("bbox")
        try:
            if not isinstance(bbox, list) or len(bbox) != 4:
                raise TypeError
            x, y, w, h = (_number(v) for v in bbox)
        except TypeError:
            raise AnnotationError(INVALID, f"{where}: 'bbox' is not [x, y, w, h]") from None
        label = categories[ann["category_id"]]
        boxes[files[ann["image_id"]]].append(LabelBox(x, y, x + w, y + h, label))
    return boxes
