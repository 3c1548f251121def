"""Embed a query image: decode it, run the model on the given boxes or on what it detects.

Tensor contract of :class:`Embedded`: ``query_vectors`` float32 ``[M, D]`` (one per given box,
``M = 0`` without boxes), ``det_boxes`` float32 ``[N, 4]`` in original-image pixels,
``det_scores`` float32 ``[N]``, ``det_classes`` int64 ``[N]``, ``det_vectors`` float32
``[N, D]``; vectors are L2-normalised, in the model's embedding space ``space_key``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from shared.imaging.decoding import ImageDecodeError, decode_image
from shared.search.boxes import check_boxes
from shared.search.models import Box

if TYPE_CHECKING:
    from shared.yolov7.detector import Detector


@dataclass
class Embedded:
    width: int
    height: int
    space_key: str
    query_boxes: list[Box]
    query_vectors: np.ndarray
    det_boxes: np.ndarray
    det_scores: np.ndarray
    det_classes: np.ndarray
    det_vectors: np.ndarray
    class_names: list[str]


def embed_query(
    data: bytes,
    name: str,
    boxes: list[Box],
    *,
    max_pixels: int,
    detector: Callable[[], Detector],
) -> Embedded:
    """Decode the uploaded file and run the model (blocking) on the given boxes, or on what it
    detects without boxes (see the module's tensor contract).

    Raises the decoding error (its class and code kept) with a message naming the upload, or
    ``box_outside_image``; both before the model is asked for (``detector()``: it may load).
    """
    try:
        decoded = decode_image(data, name=name, max_pixels=max_pixels)
    except ImageDecodeError as exc:
        raise type(exc)(
            exc.code, f"uploaded file {name!r}: {exc.message}", {"code": exc.code}
        ) from None
    check_boxes(boxes, decoded.width, decoded.height)
    model = detector()
    box_array = (
        np.array([[b.x1, b.y1, b.x2, b.y2] for b in boxes], dtype=np.float32) if boxes else None
    )
    result = model.embed([decoded.array], [box_array], detect=not boxes)[0].visible()
    return Embedded(
        width=decoded.width,
        height=decoded.height,
        space_key=model.space.key,
        query_boxes=boxes,
        query_vectors=np.asarray(result.query_vectors, dtype=np.float32),
        det_boxes=np.asarray(result.boxes, dtype=np.float32),
        det_scores=np.asarray(result.scores, dtype=np.float32),
        det_classes=np.asarray(result.classes, dtype=np.int64),
        det_vectors=np.asarray(result.vectors, dtype=np.float32),
        class_names=list(model.class_names),
    )
