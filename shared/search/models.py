"""What a search answers: hits, groups, the query's regions (pydantic v2; the API's response
models and the CLI's ``--json`` output, so field names are stable).

Coordinates: every box is ``[x1, y1, x2, y2]`` in original-image pixels after EXIF orientation.
Scores are cosine similarities (higher is closer). URLs are relative to the API root.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from shared.db.models import ObjectOrigin

# Database ids are positive 64-bit integers (SQLite rejects anything larger).
MAX_ID = 2**62
DbId = Annotated[int, Field(ge=1, le=MAX_ID)]


class Box(BaseModel):
    """An axis-aligned box in original-image pixels."""

    model_config = ConfigDict(
        json_schema_extra={"example": {"x1": 12, "y1": 30, "x2": 140, "y2": 96}}
    )

    x1: float
    y1: float
    x2: float
    y2: float


class Hit(BaseModel):
    """One object found by a search, ranked by ``score`` (cosine similarity, higher is closer)."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "score": 0.93,
                "object_id": 1204,
                "class_id": 2,
                "class_name": "car",
                "detector_score": 0.81,
                "box": {"x1": 12, "y1": 30, "x2": 140, "y2": 96},
                "image_id": 311,
                "image_url": "/v1/images/311/file",
                "crop_url": "/v1/objects/1204/crop.jpg",
            }
        }
    )

    score: float
    object_id: int
    class_id: int
    class_name: str
    origin: ObjectOrigin = Field(
        ObjectOrigin.DETECTION,
        description="'label': a box of an annotation file (class_id is then negative and "
        "class_name is its label class); 'detection': the detector's",
    )
    label_class: str | None = Field(
        None, description="The labelled box's class in the dataset's own vocabulary"
    )
    detector_score: float
    box: Box
    image_id: int
    image_url: str
    crop_url: str


class ImageGroup(BaseModel):
    """Hits rolled up to their image (``group_by=image``); ``score`` is the best hit's."""

    image_id: int
    score: float
    image_url: str
    hits: list[Hit]


class GroupBy(StrEnum):
    object = "object"
    image = "image"


class Pick(StrEnum):
    """Which detected objects of an uploaded image to search for when no box is given."""

    all = "all"
    central = "central"
    largest = "largest"
    best = "best"


class ObjectOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": 1204,
                "image_id": 311,
                "space_id": 1,
                "ordinal": 0,
                "class_id": 2,
                "class_name": "car",
                "detector_score": 0.81,
                "box": {"x1": 12, "y1": 30, "x2": 140, "y2": 96},
                "image_url": "/v1/images/311/file",
                "crop_url": "/v1/objects/1204/crop.jpg",
            }
        }
    )

    id: int
    image_id: int
    space_id: int
    ordinal: int
    class_id: int
    class_name: str
    origin: ObjectOrigin = Field(
        ObjectOrigin.DETECTION, description="'label': a box of an annotation file"
    )
    label_class: str | None = Field(
        None, description="The labelled box's class in the dataset's own vocabulary"
    )
    label_match_id: int | None = Field(
        None, description="A detection: the labelled box it overlaps with IoU >= 0.5"
    )
    detector_score: float
    box: Box
    image_url: str
    crop_url: str


class SimilarResponse(BaseModel):
    """Neighbours of a stored object (its stored vector; nothing is re-embedded)."""

    query: ObjectOut
    hits: list[Hit]
    groups: list[ImageGroup] | None = None


class QueryResult(BaseModel):
    """One searched region of an uploaded image and its neighbours."""

    source: str = Field(description="'box' (given by the caller) or 'detection'", examples=["box"])
    box: Box
    class_id: int | None = None
    class_name: str | None = None
    detector_score: float | None = None
    hits: list[Hit]
    groups: list[ImageGroup] | None = None


class ImageSearchResponse(BaseModel):
    width: int
    height: int
    space_id: int | None = Field(
        description="Embedding space searched; null when no object of the model's space is "
        "stored yet (hits are then empty)."
    )
    queries: list[QueryResult]


class ExamplesRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"example": {"positive": [1204, 1207], "negative": [88]}}
    )

    positive: list[DbId] = Field(min_length=1, max_length=100)
    negative: list[DbId] = Field(default_factory=list, max_length=100)


class ExamplesResponse(BaseModel):
    positive: list[int]
    negative: list[int]
    hits: list[Hit]
    groups: list[ImageGroup] | None = None
