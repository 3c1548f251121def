"""Request and response models of the HTTP API (pydantic v2, with OpenAPI examples).

Coordinates: every box is ``[x1, y1, x2, y2]`` in original-image pixels after EXIF orientation
(the frame of :class:`shared.db.models.DetectedObject`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.ingestion.label_rows import BoxSource

# The search models are the search service's own (shared/search/models.py); the routes answer
# with them as they are, and the other responses here embed them. DbId is re-exported: the
# routes' id parameters use it.
from shared.search.models import DbId as DbId
from shared.search.models import ObjectOut


class ErrorInfo(BaseModel):
    code: str = Field(examples=["object_not_found"])
    message: str = Field(examples=["object 42 does not exist"])
    details: Any = None


class ErrorResponse(BaseModel):
    error: ErrorInfo


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


CURSOR_NEXT = "Cursor of the next page (pass it as ``after``); null on the last page"
CURSOR_PREV = "Cursor of the previous page (pass it as ``before``); null on the first page"


class ListPage(BaseModel):
    page: int
    page_size: int
    total: int | None = Field(
        description="Matching rows; null on keyset pages (after/before), where counting would "
        "cost a scan of them: keep the first page's"
    )


class ImageList(BaseModel):
    page: ListPage
    images: list[ImageOut]
    next: int | None = Field(default=None, description=CURSOR_NEXT)
    prev: int | None = Field(default=None, description=CURSOR_PREV)


class ObjectList(BaseModel):
    page: ListPage
    objects: list[ObjectOut]
    next: int | None = Field(default=None, description=CURSOR_NEXT)
    prev: int | None = Field(default=None, description=CURSOR_PREV)


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
