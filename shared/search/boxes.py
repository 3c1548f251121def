"""The regions of a query image: boxes given by the caller, or detections picked from it."""

from __future__ import annotations

import json

import numpy as np

from shared.errors import InvalidInput
from shared.search.models import Box, Pick

MAX_QUERY_BOXES = 64


def parse_boxes(values: list[str] | None) -> list[Box]:
    """Boxes from text: each ``x1,y1,x2,y2`` (``;`` separates several) or a JSON list of such
    quadruples. Raises ``invalid_box`` naming the bad value, ``too_many_boxes``."""
    boxes: list[Box] = []
    for raw in values or []:
        text = raw.strip()
        if not text:
            continue
        try:
            if text.startswith("["):
                parsed = json.loads(text)
                quads = parsed if parsed and isinstance(parsed[0], list) else [parsed]
            else:
                quads = [[float(v) for v in part.split(",")] for part in text.split(";") if part]
            for quad in quads:
                if len(quad) != 4:
                    raise ValueError("a box needs 4 numbers")
                x1, y1, x2, y2 = (float(v) for v in quad)
                if not all(np.isfinite([x1, y1, x2, y2])):
                    raise ValueError("box coordinates must be finite")
                boxes.append(Box(x1=x1, y1=y1, x2=x2, y2=y2))
        except (ValueError, TypeError, IndexError, json.JSONDecodeError) as exc:
            raise InvalidInput(
                "invalid_box",
                f"box {raw[:100]!r} is not 'x1,y1,x2,y2' in pixels: {exc}",
                {"box": raw[:100]},
            ) from None
    if len(boxes) > MAX_QUERY_BOXES:
        raise InvalidInput(
            "too_many_boxes", f"{len(boxes)} boxes given; at most {MAX_QUERY_BOXES} per query"
        )
    return boxes


def check_boxes(boxes: list[Box], width: int, height: int) -> None:
    """Every box must lie inside the ``width`` x ``height`` image (``box_outside_image``)."""
    for i, box in enumerate(boxes):
        inside = 0 <= box.x1 < box.x2 <= width and 0 <= box.y1 < box.y2 <= height
        if not inside:
            raise InvalidInput(
                "box_outside_image",
                f"box {i} ({box.x1:g},{box.y1:g},{box.x2:g},{box.y2:g}) is not inside the "
                f"{width}x{height} image (need 0 <= x1 < x2 <= width, 0 <= y1 < y2 <= height)",
                {"box_index": i, "width": width, "height": height},
            )


def pick_detections(
    boxes: np.ndarray, scores: np.ndarray, width: int, height: int, pick: Pick
) -> list[int]:
    """Indices of the detections to search for. ``boxes``: float32 [N,4] original pixels."""
    n = int(boxes.shape[0])
    if n == 0 or pick is Pick.all:
        return list(range(n))
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    if pick is Pick.largest:
        return [int(np.argmax(areas))]
    if pick is Pick.best:
        return [int(np.argmax(scores))]
    # central: box centre nearest the image centre; the larger box wins a tie.
    cx = (boxes[:, 0] + boxes[:, 2]) / 2 - width / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2 - height / 2
    order = np.lexsort((-areas, cx * cx + cy * cy))
    return [int(order[0])]
