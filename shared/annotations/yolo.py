"""YOLO labels: one ``class cx cy w h`` line per box (normalised to 0..1), one file per image,
and the class lists that name the indices (``classes.txt``, ``*.names``, ``data.yaml``)."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from shared.annotations.model import INVALID, AnnotationError, LabelBox

CLASS_LIST_NAMES = ("classes.txt", "data.yaml", "data.yml", "dataset.yaml")


def is_class_list(member: str) -> bool:
    name = PurePosixPath(member).name.lower()
    return name in CLASS_LIST_NAMES or name.endswith(".names")


def _text(member: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise AnnotationError(INVALID, f"{member}: not UTF-8 text") from None


def looks_like_yolo(data: bytes) -> bool:
    """Whether every non-blank line is five numbers, the first an integer (an empty file is
    a YOLO file too: an image without objects)."""
    try:
        lines = [line.split() for line in data.decode("utf-8-sig").splitlines() if line.strip()]
    except UnicodeDecodeError:
        return False
    for parts in lines:
        if len(parts) != 5 or not parts[0].isdigit():
            return False
        try:
            [float(p) for p in parts[1:]]
        except ValueError:
            return False
    return True


def parse_labels(member: str, data: bytes, names: list[str] | None) -> list[LabelBox]:
    """Boxes of one YOLO file, normalised ``x1, y1, x2, y2``; ``names``: the class list
    (None: the class index itself is the label). Raises ``annotation_invalid`` naming the line."""
    boxes = []
    for number, line in enumerate(_text(member, data).splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        where = f"{member} line {number}"
        if len(parts) != 5 or not parts[0].isdigit():
            raise AnnotationError(INVALID, f"{where}: expected 'class cx cy w h'")
        try:
            cx, cy, w, h = (float(p) for p in parts[1:])
        except ValueError:
            raise AnnotationError(INVALID, f"{where}: coordinates are not numbers") from None
        index = int(parts[0])
        if names is not None and index >= len(names):
            raise AnnotationError(
                INVALID, f"{where}: class {index} is not in the class list ({len(names)} names)"
            )
        label = names[index] if names is not None else str(index)
        boxes.append(LabelBox(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, label))
    return boxes


_YAML_ITEM = re.compile(r"^\s+(?:-\s*|\d+\s*:\s*)(.+?)\s*$")


def _unquote(value: str) -> str:
    value = value.split(" #", 1)[0].strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _yaml_names(member: str, text: str) -> list[str]:
    """The ``names`` of a YOLO ``data.yaml``: a flow list (``names: [a, b]``), a block list
    (``- a``) or an index map (``0: a``). Only this key is read."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith("names:"):
            continue
        rest = line[len("names:") :].split(" #", 1)[0].strip()
        if rest.startswith("["):
            if not rest.endswith("]"):
                break
            return [_unquote(v) for v in rest[1:-1].split(",") if v.strip()]
        if rest:
            break
        names = []
        for item in lines[i + 1 :]:
            match = _YAML_ITEM.match(item)
            if match is None:
                if item.strip():
                    break
                continue
            names.append(_unquote(match.group(1)))
        if names:
            return names
        break
    raise AnnotationError(INVALID, f"{member}: no 'names' list of class names")


def parse_class_list(member: str, data: bytes) -> list[str]:
    """Class names by index: one per line (``classes.txt``, ``*.names``) or ``data.yaml``'s
    ``names``."""
    text = _text(member, data)
    if PurePosixPath(member).suffix.lower() in (".yaml", ".yml"):
        return _yaml_names(member, text)
    names = [line.strip() for line in text.splitlines()]
    while names and not names[-1]:
        names.pop()
    if not names or any(not n for n in names):
        raise AnnotationError(INVALID, f"{member}: a class list needs one non-empty name a line")
    return names
