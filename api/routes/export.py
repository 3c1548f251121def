"""Export vectors with their object/image ids, classes and boxes for downstream classifiers.

Streamed in bounded memory (one batch at a time), whatever the number of objects; the
selection and the split are checked before the first byte, so bad parameters answer 422 with
the common error body.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from api.dependencies import ResourcesDep
from api.errors import ApiError
from api.report_schemas import ExportFormat, SplitPart
from api.schemas import DbId, ErrorResponse
from shared.db.models import ObjectOrigin
from shared.errors import NotFound
from shared.export.rows import ExportSpec
from shared.export.splits import SplitSpec, split_index
from shared.export.streams import MEDIA_TYPES, stream_csv, stream_npy, stream_npz, stream_parquet
from shared.reports.errors import ReportError
from shared.reports.selection import count_objects, resolve_selection
from shared.selection import SelectionError, selection_from

router = APIRouter(tags=["export"])
NOT_FOUND_CODES = frozenset({"space_not_found", "ingestion_not_found"})
EXPORT_BATCH = 4096


@router.get(
    "/v1/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {media: {} for media in MEDIA_TYPES.values()},
            "description": "The export file (see docs/reports.md for the columns)",
        },
        404: {"model": ErrorResponse, "description": "Unknown space or ingestion"},
        422: {"model": ErrorResponse},
    },
    summary="Export vectors, ids, classes and boxes (optionally split by image)",
)
def export(
    resources: ResourcesDep,
    format: Annotated[
        ExportFormat,
        Query(
            description="parquet (metadata + vector column), csv (metadata only), npy "
            "(vectors, rows as in csv), npz (numpy arrays: vectors, object_ids, image_ids, "
            "class_ids, scores, boxes, class_names)"
        ),
    ] = ExportFormat.parquet,
    space_id: Annotated[DbId | None, Query(description="Embedding space")] = None,
    classes: Annotated[
        list[str] | None,
        Query(description="Class names or ids; repeat or comma-separate", max_length=1000),
    ] = None,
    ingestions: Annotated[
        list[DbId] | None, Query(description="Only objects of these ingestions", max_length=1000)
    ] = None,
    min_score: Annotated[float | None, Query(ge=0.0, le=1.0)] = None,
    origin: Annotated[
        ObjectOrigin | None,
        Query(description="Only detections, or only labelled boxes (annotation files)"),
    ] = None,
    label_classes: Annotated[
        list[str] | None,
        Query(
            description="Only labelled boxes of these label classes (repeat or comma-separate); "
            "with the 'label' column this is the table to train a classifier on your boxes",
            max_length=1000,
        ),
    ] = None,
    split: Annotated[
        str | None,
        Query(
            max_length=64,
            description="train,val[,test] fractions, e.g. 0.8,0.1,0.1: split by image (no "
            "image's objects in two parts), deterministic from the seed",
        ),
    ] = None,
    seed: Annotated[int, Query(ge=0, le=2**31 - 1, description="Seed of the split")] = 0,
    part: Annotated[
        SplitPart | None, Query(description="Only this part of the split (needs split)")
    ] = None,
) -> StreamingResponse:
    wanted = selection_from(
        space_id=space_id,
        classes=classes,
        ingestions=ingestions,
        min_score=min_score,
        origin=None if origin is None else origin.value,
        label_classes=label_classes,
    )
    split_spec = SplitSpec.parse(split, seed) if split is not None else None
    if part is not None and split_spec is None:
        raise ReportError("invalid_split", "part needs a split (for example split=0.8,0.1,0.1)")
    with resources.db.read() as session:
        try:
            selection = resolve_selection(session, wanted)
        except SelectionError as exc:
            if exc.code in NOT_FOUND_CODES:
                # An unknown space or ingestion names a resource that does not exist: 404, as
                # /v1/index/status answers for an unknown space.
                raise NotFound(exc.code, exc.message, exc.details) from None
            raise
        if count_objects(session, selection) == 0:
            raise SelectionError("empty_selection", "no object matches the selection")
    spec = ExportSpec(
        selection=selection,
        split=split_spec,
        part=None if part is None else split_index(part.value),
    )
    db = resources.db
    body: Iterator[bytes]
    if format == ExportFormat.csv:
        body = stream_csv(db, spec, batch_size=EXPORT_BATCH)
    elif format == ExportFormat.parquet:
        body = stream_parquet(db, spec, batch_size=EXPORT_BATCH)
    elif format == ExportFormat.npy:
        body = stream_npy(db, spec, batch_size=EXPORT_BATCH)
    elif format == ExportFormat.npz:
        workdir = resources.settings.cache_dir / "exports"
        body = stream_npz(db, spec, workdir, batch_size=EXPORT_BATCH)
    else:  # pragma: no cover - the enum is exhaustive
        raise ApiError(422, "validation_error", f"unknown format {format}")
    suffix = "" if part is None else f"-{part.value}"
    filename = f"roisearch-space{selection.space_id}{suffix}.{format.value}"
    headers: dict[str, Any] = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return StreamingResponse(body, media_type=MEDIA_TYPES[format.value], headers=headers)
