"""Database rows and index metadata → hits and objects, with the URLs clients follow (relative
to the API root)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from shared.db.models import DetectedObject, ObjectOrigin
from shared.ingestion.spaces import class_name
from shared.search.models import Box, Hit, ImageGroup, ObjectOut

if TYPE_CHECKING:
    from shared.index import ObjectMetadata


def image_file_url(image_id: int) -> str:
    return f"/v1/images/{image_id}/file"


def detections_url(image_id: int) -> str:
    return f"/v1/images/{image_id}/detections.jpg"


def crop_url(object_id: int) -> str:
    return f"/v1/objects/{object_id}/crop.jpg"


def box_of(obj: HitRow | DetectedObject) -> Box:
    return Box(x1=obj.x1, y1=obj.y1, x2=obj.x2, y2=obj.y2)


def object_out(obj: ObjectRow | DetectedObject) -> ObjectOut:
    return ObjectOut(
        id=obj.id,
        image_id=obj.image_id,
        space_id=obj.space_id,
        ordinal=obj.ordinal,
        class_id=obj.class_id,
        class_name=obj.class_name,
        origin=ObjectOrigin.LABEL if obj.class_id < 0 else ObjectOrigin.DETECTION,
        label_class=obj.class_name if obj.class_id < 0 else None,
        label_match_id=getattr(obj, "label_match_id", None),
        detector_score=obj.score,
        box=box_of(obj),
        image_url=image_file_url(obj.image_id),
        crop_url=crop_url(obj.id),
    )


class HitRow(Protocol):
    id: int
    image_id: int
    class_id: int
    class_name: str
    score: float
    x1: float
    y1: float
    x2: float
    y2: float


# The columns of a hit (:class:`HitRow`), in this order.
HIT_COLUMNS = (
    DetectedObject.id,
    DetectedObject.image_id,
    DetectedObject.class_id,
    DetectedObject.class_name,
    DetectedObject.score,
    DetectedObject.x1,
    DetectedObject.y1,
    DetectedObject.x2,
    DetectedObject.y2,
)
# The columns a query object needs: a hit's, its space and ordinal, and its vector.
OBJECT_COLUMNS = (
    *HIT_COLUMNS,
    DetectedObject.space_id,
    DetectedObject.ordinal,
    DetectedObject.vector,
)


class ObjectRow(HitRow, Protocol):
    space_id: int
    ordinal: int
    vector: bytes


# The index holds boxes and detector scores as float32, the database as doubles: values are
# rounded to what float32 resolves (a millipixel; 7 decimals of a score in [0, 1]) so that JSON
# shows 12.3, not 12.300000190734863, and equals the database's value to that precision.
BOX_DECIMALS = 3
SCORE_DECIMALS = 7


@dataclass(slots=True)
class IndexedHit:
    """A hit's fields as the index holds them (satisfies :class:`HitRow`)."""

    id: int
    image_id: int
    class_id: int
    class_name: str
    score: float
    x1: float
    y1: float
    x2: float
    y2: float


def indexed_hits(
    meta: ObjectMetadata, names: Sequence[str], labels: Mapping[int, str] | None = None
) -> dict[int, IndexedHit]:
    """The index's metadata of hit objects, by object id, with JSON-friendly floats.
    ``labels``: label class names by their (negative) class-id code, for labelled boxes."""
    labels = labels or {}
    boxes = np.round(
        np.stack([meta.x1, meta.y1, meta.x2, meta.y2]).astype(np.float64), BOX_DECIMALS
    ).tolist()
    scores = np.round(meta.scores.astype(np.float64), SCORE_DECIMALS).tolist()
    return {
        object_id: IndexedHit(
            object_id,
            image_id,
            class_id,
            labels.get(class_id, str(class_id)) if class_id < 0 else class_name(names, class_id),
            score,
            x1,
            y1,
            x2,
            y2,
        )
        for object_id, image_id, class_id, score, x1, y1, x2, y2 in zip(
            meta.ids.tolist(),
            meta.image_ids.tolist(),
            meta.class_ids.tolist(),
            scores,
            *boxes,
            strict=True,
        )
    }


def hit_out(obj: HitRow | DetectedObject, score: float) -> Hit:
    return Hit(
        score=score,
        object_id=obj.id,
        class_id=obj.class_id,
        class_name=obj.class_name,
        origin=ObjectOrigin.LABEL if obj.class_id < 0 else ObjectOrigin.DETECTION,
        label_class=obj.class_name if obj.class_id < 0 else None,
        detector_score=obj.score,
        box=Box(x1=obj.x1, y1=obj.y1, x2=obj.x2, y2=obj.y2),
        image_id=obj.image_id,
        image_url=image_file_url(obj.image_id),
        crop_url=crop_url(obj.id),
    )


def group_by_image(hits: list[Hit], k: int) -> list[ImageGroup]:
    """Roll hits (best first) up to at most ``k`` images, ordered by each image's best hit."""
    groups: dict[int, ImageGroup] = {}
    for hit in hits:
        group = groups.get(hit.image_id)
        if group is None:
            if len(groups) >= k:
                continue
            group = groups[hit.image_id] = ImageGroup(
                image_id=hit.image_id,
                score=hit.score,
                image_url=image_file_url(hit.image_id),
                hits=[],
            )
        group.hits.append(hit)
    return list(groups.values())


def vector_of(obj: ObjectRow | DetectedObject) -> np.ndarray:
    """The stored vector: float32 little-endian bytes → float32 ``[D]``."""
    return np.frombuffer(obj.vector, dtype="<f4").astype(np.float32)
