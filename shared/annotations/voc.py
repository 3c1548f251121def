"""Pascal VOC XML: one ``<annotation>`` per image, its ``<filename>`` and ``<object>``s, each
with a ``<name>`` and a ``<bndbox>`` (xmin, ymin, xmax, ymax in pixels)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from shared.annotations.model import INVALID, AnnotationError, LabelBox


@dataclass(frozen=True)
class VocFile:
    filename: str | None
    boxes: list[LabelBox]


def looks_like_voc(data: bytes) -> bool:
    return b"<annotation" in data


def parse(member: str, data: bytes) -> VocFile:
    """Raises ``annotation_invalid`` naming the first bad object."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        # Entity expansion is how XML bombs work; VOC files never need a DTD.
        raise AnnotationError(INVALID, f"{member}: DTDs and entities are not accepted")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise AnnotationError(INVALID, f"{member}: not well-formed XML ({exc})") from None
    if root.tag != "annotation":
        raise AnnotationError(INVALID, f"{member}: the root element is not <annotation>")
    filename = (root.findtext("filename") or "").strip() or None
    boxes = []
    for n, obj in enumerate(root.iter("object")):
        where = f"{member}: object {n + 1}"
        name = (obj.findtext("name") or "").strip()
        box = obj.find("bndbox")
        if not name or box is None:
            raise AnnotationError(INVALID, f"{where} has no <name> or no <bndbox>")
        try:
            x1, y1, x2, y2 = (
                float(box.findtext(k) or "") for k in ("xmin", "ymin", "xmax", "ymax")
            )
        except ValueError:
            raise AnnotationError(
                INVALID, f"{where}: <bndbox> needs numeric xmin ymin xmax ymax"
            ) from None
        boxes.append(LabelBox(x1, y1, x2, y2, name))
    return VocFile(filename, boxes)
