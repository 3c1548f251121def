"""Browse stored objects and their crops."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import FileResponse
from sqlalchemy import select

from api.dependencies import ResourcesDep
from api.errors import not_found
from api.listing_params import ListingDep
from api.rendering import crop_jpeg
from api.schemas import ErrorResponse, ObjectList, ObjectOut
from shared.db.models import DetectedObject, Image
from shared.listing import list_objects as list_object_ids
from shared.search.hits import object_out

router = APIRouter(tags=["objects"])
ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": ErrorResponse}}
ObjectId = Annotated[int, Path(ge=1, le=2**62, description="Object id")]
CROP_CACHE_SECONDS = 86400


@router.get("/v1/objects", response_model=ObjectList, summary="List objects")
def list_objects(
    resources: ResourcesDep,
    params: ListingDep,
    image_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    space_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    class_name: Annotated[str | None, Query(max_length=128)] = None,
) -> ObjectList:
    """Objects ordered by id, filtered like a search, optionally only those of one image, space
    or class. Page with ``after=<next>`` (keyset: a deep page costs what the first does) or
    ``page``."""
    classes = (*params.filter.classes, class_name) if class_name else params.filter.classes
    params = params.with_filter(image_id=image_id, space_id=space_id, classes=classes)
    with resources.db.read() as session:
        listing = list_object_ids(session, params.filter, params.request)
        rows = session.scalars(
            select(DetectedObject)
            .where(DetectedObject.id.in_(listing.ids))
            .order_by(DetectedObject.id)
        ).all()
        objects = [object_out(o) for o in rows]
    return ObjectList(
        page=params.page(listing), objects=objects, next=listing.next, prev=listing.prev
    )


@router.get(
    "/v1/objects/{object_id}", response_model=ObjectOut, responses=ERRORS, summary="One object"
)
def get_object(object_id: ObjectId, resources: ResourcesDep) -> ObjectOut:
    with resources.db.read() as session:
        obj = session.get(DetectedObject, object_id)
        if obj is None:
            raise not_found("object", object_id)
        return object_out(obj)


@router.get(
    "/v1/objects/{object_id}/crop.jpg",
    response_class=FileResponse,
    responses={**ERRORS, 200: {"content": {"image/jpeg": {}}}},
    summary="The object's crop as a JPEG thumbnail (cached)",
)
def get_crop(
    object_id: ObjectId,
    resources: ResourcesDep,
    size: Annotated[int, Query(ge=16, le=1024, description="Longest side in pixels")] = 256,
) -> FileResponse:
    with resources.db.read() as session:
        obj = session.get(DetectedObject, object_id)
        if obj is None:
            raise not_found("object", object_id)
        image = session.get(Image, obj.image_id)
        assert image is not None  # foreign key
        path = crop_jpeg(resources.settings, obj, image, size)
    return FileResponse(
        path,
        media_type="image/jpeg",
        headers={"Cache-Control": f"private, max-age={CROP_CACHE_SECONDS}"},
    )
