"""Request and response models of the HTTP API (pydantic v2, with OpenAPI examples).

Coordinates: every box is ``[x1, y1, x2, y2]`` in original-image pixels after EXIF orientation
(the frame of :class:`shared.db.models.DetectedObject`).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from shared.db.models import ObjectOrigin
from shared.ingestion.label_rows import BoxSource

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


class ErrorInfo(BaseModel):
    code: str = Field(examples=["object_not_found"])
    message: str = Field(examples=["object 42 does not exist"])
    details: Any = None


class ErrorResponse(BaseModel):
    error: ErrorInfo


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


class Page(BaseModel):
    page: int
    page_size: int
    total: int


class ImageOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": 311,
                "sha256": "9f2c…",
                "width": 1280,
                "height": 720,
                "format": "JPEG",
                "bytes": 183220,
                "source": "upload-7.zip:street/0001.jpg",
                "created_at": "2026-01-01T12:00:00Z",
                "object_count": 4,
                "file_url": "/v1/images/311/file",
                "detections_url": "/v1/images/311/detections.jpg",
            }
        }
    )

    id: int
    sha256: str
    width: int
    height: int
    format: str
    bytes: int
    source: str
    created_at: datetime | None
    object_count: int
    file_url: str | None = Field(description="null when the original is not stored")
    detections_url: str | None


class ImageDetail(ImageOut):
    objects: list[ObjectOut]


class ImageList(BaseModel):
    page: Page
    images: list[ImageOut]


class ObjectList(BaseModel):
    page: Page
    objects: list[ObjectOut]


class DeleteResponse(BaseModel):
    deleted_images: int = 0
    deleted_objects: int
    removed_from_index: int


class IngestionPathRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"example": {"path": "archives/street.zip"}}
    )

    path: str = Field(
        min_length=1,
        max_length=4096,
        description="A folder, archive or file inside one of the configured import roots "
        "(absolute, or relative to the first import root).",
    )
    boxes: BoxSource = Field(
        BoxSource.BOTH,
        description="Which boxes become objects: the annotation files' labelled boxes "
        "(COCO JSON, YOLO txt, Pascal VOC XML in the source), the detector's, or both.",
    )


class IngestionCounts(BaseModel):
    pending: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0


class IngestionOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": 7,
                "source": "street.zip",
                "source_kind": "zip",
                "status": "running",
                "total_items": 1000,
                "counts": {"pending": 400, "done": 590, "failed": 10, "skipped": 0},
                "objects_found": 2310,
                "images_per_s": 6.4,
                "eta_s": 62.5,
                "created_at": "2026-01-01T12:00:00Z",
                "started_at": "2026-01-01T12:00:01Z",
                "finished_at": None,
                "error_code": None,
                "error_message": None,
            }
        }
    )

    id: int
    source: str
    source_kind: str
    status: str
    total_items: int
    counts: IngestionCounts
    objects_found: int
    images_per_s: float | None
    eta_s: float | None
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    error_code: str | None
    error_message: str | None


class IngestionItemOut(BaseModel):
    id: int
    member: str
    status: str
    error_code: str | None
    error_message: str | None
    image_id: int | None
    attempts: int


class IngestionDetail(IngestionOut):
    failed_items: list[IngestionItemOut]
    failed_page: Page
    skipped_items: list[IngestionItemOut] = Field(
        description="Members that are not images (codes not_an_image, empty_file), with reasons"
    )
    skipped_page: Page


class IngestionList(BaseModel):
    page: Page
    ingestions: list[IngestionOut]


class ItemList(BaseModel):
    page: Page
    items: list[IngestionItemOut]


class CheckState(BaseModel):
    ok: bool
    detail: str


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, CheckState]


class SpaceOut(BaseModel):
    id: int
    key: str
    architecture: str
    layers: list[Any]
    pooling: str
    input_size: int
    dim: int
    weights_sha256: str
    class_names: list[Any]


class ModelOut(BaseModel):
    weights: str = Field(description="Checkpoint file name (never a server path), or 'bundled'")
    weights_sha256: str
    architecture: str
    class_names: list[str]
    input_size: int
    feature_layers: list[Any]
    pooling: str
    dim: int
    space_key: str
    space_id: int | None = Field(description="Database id of this embedding space, if stored")
    device: str
    demo: bool = Field(
        description="True for the bundled demo detector, which only knows generated shapes"
    )
    notice: str | None = Field(
        description="One line to show beside results: for the demo detector, what it knows and "
        "how to use official YOLOv7 weights (ROISEARCH_WEIGHTS); null for other weights"
    )


class IndexSpaceStatus(BaseModel):
    space_id: int
    status: dict[str, Any]


class IndexStatusResponse(BaseModel):
    spaces: list[IndexSpaceStatus]


class RebuildResponse(BaseModel):
    space_id: int
    started: bool
    message: str
