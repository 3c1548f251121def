"""Browse images: metadata, the original file, detections drawn; delete an image."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import FileResponse, Response
from sqlalchemy import func, select

from api.dependencies import ResourcesDep
from api.errors import not_found
from api.listing_params import ListingDep
from api.rendering import detections_jpeg, original_path
from api.schemas import DeleteResponse, ErrorResponse, ImageDetail, ImageList, ImageOut
from shared.db.models import DetectedObject, Image
from shared.listing import list_images as list_image_ids
from shared.search.hits import detections_url, image_file_url, object_out

router = APIRouter(tags=["images"])
ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": ErrorResponse}}
ImageId = Annotated[int, Path(ge=1, le=2**62, description="Image id")]
MEDIA_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}


def image_out(image: Image, object_count: int) -> ImageOut:
    stored = bool(image.storage_path)
    return ImageOut(
        id=image.id,
        sha256=image.sha256,
        width=image.width,
        height=image.height,
        format=image.format,
        bytes=image.bytes,
        source=image.source,
        created_at=image.created_at,
        object_count=object_count,
        file_url=image_file_url(image.id) if stored else None,
        detections_url=detections_url(image.id) if stored else None,
    )


@router.get("/v1/images", response_model=ImageList, summary="List images")
def list_images(
    resources: ResourcesDep,
    params: ListingDep,
    ingestion_id: Annotated[
        int | None, Query(ge=1, le=2**62, description="Only images of this ingestion")
    ] = None,
) -> ImageList:
    """Images ordered by id, filtered like a search (an image matches when one of its objects
    does). Page with ``after=<next>`` (keyset: a deep page costs what the first does) or
    ``page``."""
    if ingestion_id is not None:
        params = params.with_filter(ingestions=(*params.filter.ingestions, ingestion_id))
    with resources.db.read() as session:
        listing = list_image_ids(session, params.filter, params.request)
        ids = listing.ids
        images = session.scalars(select(Image).where(Image.id.in_(ids)).order_by(Image.id)).all()
        counts = dict(
            session.execute(
                select(DetectedObject.image_id, func.count(DetectedObject.id))
                .where(DetectedObject.image_id.in_(ids))
                .group_by(DetectedObject.image_id)
            ).all()
        )
        out = [image_out(image, int(counts.get(image.id, 0))) for image in images]
    return ImageList(page=params.page(listing), images=out, next=listing.next, prev=listing.prev)


@router.get(
    "/v1/images/{image_id}", response_model=ImageDetail, responses=ERRORS, summary="One image"
)
def get_image(image_id: ImageId, resources: ResourcesDep) -> ImageDetail:
    """Image metadata and its detected objects (every embedding space)."""
    with resources.db.read() as session:
        image = session.get(Image, image_id)
        if image is None:
            raise not_found("image", image_id)
        objects = session.scalars(
            select(DetectedObject)
            .where(DetectedObject.image_id == image_id)
            .order_by(DetectedObject.space_id, DetectedObject.ordinal)
        ).all()
        base = image_out(image, len(objects))
        return ImageDetail(**base.model_dump(), objects=[object_out(o) for o in objects])


@router.get(
    "/v1/images/{image_id}/file",
    response_class=FileResponse,
    responses={**ERRORS, 200: {"content": {"image/*": {}}}},
    summary="The original image file",
)
def get_image_file(image_id: ImageId, resources: ResourcesDep) -> FileResponse:
    with resources.db.read() as session:
        image = session.get(Image, image_id)
        if image is None:
            raise not_found("image", image_id)
        path = original_path(resources.settings, image)
        media_type = MEDIA_TYPES.get(image.format.upper(), "application/octet-stream")
    return FileResponse(
        path, media_type=media_type, headers={"Cache-Control": "private, max-age=86400"}
    )


@router.get(
    "/v1/images/{image_id}/detections.jpg",
    response_class=Response,
    responses={**ERRORS, 200: {"content": {"image/jpeg": {}}}},
    summary="The image with its detections drawn",
)
def get_detections_image(
    image_id: ImageId,
    resources: ResourcesDep,
    max_side: Annotated[int, Query(ge=64, le=4096, description="Longest side in pixels")] = 1280,
    space_id: Annotated[
        int | None, Query(ge=1, le=2**62, description="Only this space's objects")
    ] = None,
) -> Response:
    with resources.db.read() as session:
        image = session.get(Image, image_id)
        if image is None:
            raise not_found("image", image_id)
        query = select(DetectedObject).where(DetectedObject.image_id == image_id)
        if space_id is not None:
            query = query.where(DetectedObject.space_id == space_id)
        objects = session.scalars(query.order_by(DetectedObject.ordinal)).all()
        data = detections_jpeg(resources.settings, image, objects, max_side)
    # The browse grid shows these as thumbnails: let the browser keep them like the crops.
    return Response(
        data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"}
    )


@router.delete(
    "/v1/images/{image_id}",
    response_model=DeleteResponse,
    responses=ERRORS,
    summary="Delete an image and remove its objects from search",
)
def delete_image(image_id: ImageId, resources: ResourcesDep) -> DeleteResponse:
    result = resources.deletion.delete_images([image_id])
    if result.deleted_images == 0:
        raise not_found("image", image_id)
    return DeleteResponse(**asdict(result))
