"""Similarity search: by stored object, by uploaded image (optionally with boxes), by examples.

Parsing and presenting only: the searches are :class:`shared.search.service.SearchService`'s.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, File, Form, Path, Query, Response, UploadFile

from api.dependencies import FilterDep, GroupDep, KDep, ResourcesDep
from api.errors import ApiError
from api.schemas import ErrorResponse
from shared.index.rwlock import LockBusyError
from shared.search.boxes import parse_boxes
from shared.search.models import (
    ExamplesRequest,
    ExamplesResponse,
    GroupBy,
    ImageSearchResponse,
    Pick,
    SimilarResponse,
)
from shared.search.service import SearchService
from shared.selection import Selection

router = APIRouter(tags=["search"])

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (404, 413, 422, 503)
}
MAX_MODEL_WAITING = 8
ObjectId = Annotated[int, Path(ge=1, le=2**62, description="Object id")]


@router.get(
    "/v1/objects/{object_id}/similar",
    response_model=SimilarResponse,
    responses=ERRORS,
    summary="Objects similar to a stored object",
)
async def similar(
    object_id: ObjectId,
    resources: ResourcesDep,
    k: KDep,
    filters: FilterDep,
    group_by: GroupDep,
    include_self: Annotated[
        bool, Query(description="Keep the query object itself among the hits")
    ] = False,
) -> Response:
    """Nearest neighbours of object ``object_id`` using its stored vector (never re-embedded).

    The response carries ``Server-Timing: index;dur=…, handler;dur=…`` (milliseconds).
    """
    # With SQLite and a cheap index (IVF, HNSW, or Flat up to ~18k vectors at 224-d) the whole
    # request is ~0.5 ms of local work, and a hop to the thread pool and back costs ~0.15 ms of
    # that on two cores while buying no parallelism (the work holds the GIL but for the search):
    # such a search runs on the event loop (SearchService.runs_inline). Everything slower —
    # PostgreSQL round trips, exact scans of large spaces, filters that build candidate masks,
    # an index locked by a writer (a catch-up, a rebuild swap) — runs in the thread pool.
    run = partial(similar_response, resources.search, object_id, k, filters, group_by, include_self)
    if resources.search.runs_inline(filters):
        try:
            return run(wait=False)
        except LockBusyError:
            pass  # the index is being changed right now: wait for it in a thread, not here
    return await anyio.to_thread.run_sync(run)


def similar_response(
    search: SearchService,
    object_id: int,
    k: int,
    filters: Selection,
    group_by: GroupBy,
    include_self: bool,
    *,
    wait: bool = True,
) -> Response:
    """The body of :func:`similar`, serialised here (FastAPI would validate the model again).

    Server-Timing (W3C): clients and bench/api.py separate the index search from the rest.
    """
    began = time.perf_counter()
    found = search.similar(object_id, k, filters, group_by, include_self=include_self, wait=wait)
    handler_s = time.perf_counter() - began
    timing = f"index;dur={found.index_seconds * 1e3:.3f}, handler;dur={handler_s * 1e3:.3f}"
    return Response(
        found.response.model_dump_json(),
        media_type="application/json",
        headers={"Server-Timing": timing},
    )


@router.post(
    "/v1/search",
    response_model=ImageSearchResponse,
    responses={**ERRORS, 415: {"model": ErrorResponse}},
    summary="Search with an uploaded image, optionally with boxes drawn on it",
)
async def search_image(
    resources: ResourcesDep,
    k: KDep,
    filters: FilterDep,
    group_by: GroupDep,
    image: Annotated[UploadFile, File(description="JPEG, PNG, WebP, … image")],
    boxes: Annotated[
        list[str] | None,
        Form(
            description="Regions to search for, in original-image pixels: 'x1,y1,x2,y2' "
            "(repeat the field, or separate with ';'). Without boxes, the detected objects "
            "are searched for."
        ),
    ] = None,
    pick: Annotated[
        Pick, Query(description="Without boxes: all detections, or only the central/largest/best")
    ] = Pick.all,
) -> ImageSearchResponse:
    """Embed the uploaded image in this process and search for its objects or regions.

    The model runs in the API process (no worker round trip): see docs/api.md.
    """
    parsed = parse_boxes(boxes)
    if resources.model_limiter.statistics().tasks_waiting >= MAX_MODEL_WAITING:
        # Each forward pass takes ~0.1 s on CPU: a longer queue only adds latency.
        raise ApiError(
            503,
            "overloaded",
            "too many image queries are waiting for the model; retry shortly",
            headers={"Retry-After": "1"},
        )
    limit = resources.settings.max_query_image_bytes
    data = await image.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, "payload_too_large", f"query image is over {limit} bytes")
    name = (image.filename or "upload")[-200:]
    search = resources.search
    embedded = await anyio.to_thread.run_sync(
        partial(search.embed, data, name, parsed), limiter=resources.model_limiter
    )
    return await anyio.to_thread.run_sync(
        partial(search.search_embedded, embedded, k, filters, group_by, pick)
    )


@router.post(
    "/v1/search/examples",
    response_model=ExamplesResponse,
    responses=ERRORS,
    summary="Search with positive (and negative) example objects",
)
def search_examples(
    body: ExamplesRequest, resources: ResourcesDep, k: KDep, filters: FilterDep, group_by: GroupDep
) -> ExamplesResponse:
    """Rocchio query: centroid of the positives minus half the centroid of the negatives.

    All examples must be objects of one embedding space; they are excluded from the hits.
    """
    return resources.search.search_examples(body.positive, body.negative, k, filters, group_by)
