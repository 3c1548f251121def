"""Similarity search: by stored object, by uploaded image (optionally with boxes), by examples."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any

import anyio
import numpy as np
from fastapi import APIRouter, File, Form, Path, Query, Response, UploadFile
from sqlalchemy import select

from api.dependencies import FilterDep, FilterParams, KDep, ResourcesDep
from api.errors import ApiError, not_found
from api.presenters import object_out
from api.resources import Resources
from api.schemas import (
    Box,
    ErrorResponse,
    ExamplesRequest,
    ExamplesResponse,
    ImageSearchResponse,
    Pick,
    QueryResult,
    SimilarResponse,
)
from api.search_service import (
    build_filter,
    fetch_k,
    load_object,
    rank,
    search_vectors,
    vector_of,
)
from shared.db.models import DetectedObject, EmbeddingSpace
from shared.imaging.decoding import ImageDecodeError, decode_image
from shared.index.rwlock import LockBusyError

router = APIRouter(tags=["search"])

ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse},
    413: {"model": ErrorResponse},
    422: {"model": ErrorResponse},
    503: {"model": ErrorResponse},
}
MAX_QUERY_BOXES = 64
MAX_MODEL_WAITING = 8
# Rocchio-style weight of the negative examples' centroid.
NEGATIVE_WEIGHT = 0.5
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
    include_self: Annotated[
        bool, Query(description="Keep the query object itself among the hits")
    ] = False,
) -> Response:
    """Nearest neighbours of object ``object_id`` using its stored vector (never re-embedded).

    The response carries ``Server-Timing: index;dur=…, handler;dur=…`` (milliseconds).
    """
    run = partial(similar_response, resources, object_id, k, filters, include_self)
    if _runs_inline(resources, filters):
        try:
            return run(wait=False)
        except LockBusyError:
            pass  # the index is being changed right now: wait for it in a thread, not here
    return await anyio.to_thread.run_sync(run)


def _runs_inline(resources: Resources, filters: FilterParams) -> bool:
    """Whether a search by id runs on the event loop rather than in the thread pool.

    With SQLite and a cheap index (IVF, HNSW, or Flat up to ~18k vectors at 224-d) the whole
    request is ~0.5 ms of local work: one indexed point read, a sub-millisecond search, JSON.
    A hop to the thread pool and back costs ~0.15 ms of that on two cores (measured while
    developing this: a bare FastAPI route that only hops answered 0.15 ms slower than an
    ``async def`` one), and buys no parallelism: the work holds the GIL but for the search.
    Everything slower — PostgreSQL round trips, exact scans of large spaces, filters that
    build candidate masks — runs in the thread pool, as FastAPI runs ``def`` routes; so does
    a search that finds the index locked by a writer (a catch-up, a rebuild swap).
    """
    return (
        resources.db.dialect == "sqlite"
        and not filters.restricts_candidates
        and resources.index.searches_are_cheap()
    )


def similar_response(
    resources: Resources,
    object_id: int,
    k: int,
    filters: FilterParams,
    include_self: bool,
    *,
    wait: bool = True,
) -> Response:
    """The body of :func:`similar`. ``wait=False``: raise ``LockBusyError`` rather than wait for
    the index (nothing is changed before that point, so the call can be repeated)."""
    began = time.perf_counter()
    with resources.db.read_connection() as connection:
        obj = load_object(connection, object_id)
    if obj is None:
        raise not_found("object", object_id)
    query = object_out(obj)
    exclude = () if include_self else (object_id,)
    flt = build_filter(resources, obj.space_id, filters, exclude)
    searched = time.perf_counter()
    results = search_vectors(
        resources,
        obj.space_id,
        vector_of(obj)[None, :],
        fetch_k(k, filters.group_by),
        flt,
        kind="object",
        wait=wait,
    )
    index_s = time.perf_counter() - searched
    ranked = rank(resources, obj.space_id, results, k, filters.group_by, wait=wait)[0]
    # Serialised here: the model is already validated, FastAPI would validate it again.
    body = SimilarResponse(query=query, hits=ranked.hits, groups=ranked.groups).model_dump_json()
    handler_s = time.perf_counter() - began
    # Server-Timing (W3C): clients and bench/api.py separate the index search from the rest.
    timing = f"index;dur={index_s * 1e3:.3f}, handler;dur={handler_s * 1e3:.3f}"
    return Response(body, media_type="application/json", headers={"Server-Timing": timing})


def parse_boxes(values: list[str] | None) -> list[Box]:
    """Boxes from form fields: each ``x1,y1,x2,y2`` or a JSON list of such quadruples."""
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
            raise ApiError(
                422,
                "invalid_box",
                f"box {raw[:100]!r} is not 'x1,y1,x2,y2' in pixels: {exc}",
                {"box": raw[:100]},
            ) from None
    if len(boxes) > MAX_QUERY_BOXES:
        raise ApiError(
            422, "too_many_boxes", f"{len(boxes)} boxes given; at most {MAX_QUERY_BOXES} per query"
        )
    return boxes


def check_boxes(boxes: list[Box], width: int, height: int) -> None:
    for i, box in enumerate(boxes):
        inside = 0 <= box.x1 < box.x2 <= width and 0 <= box.y1 < box.y2 <= height
        if not inside:
            raise ApiError(
                422,
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


@dataclass
class Embedded:
    width: int
    height: int
    space_key: str
    query_boxes: list[Box]
    query_vectors: np.ndarray  # float32 [M, D]
    det_boxes: np.ndarray  # float32 [N, 4]
    det_scores: np.ndarray  # float32 [N]
    det_classes: np.ndarray  # int64 [N]
    det_vectors: np.ndarray  # float32 [N, D]
    class_names: list[str]


def embed_query(resources: Resources, data: bytes, name: str, boxes: list[Box]) -> Embedded:
    """Decode and run the model (blocking). Raises ApiError for bad images or boxes."""
    try:
        decoded = decode_image(data, name=name, max_pixels=resources.settings.max_image_pixels)
    except ImageDecodeError as exc:
        status = 415 if exc.code in UNSUPPORTED_CODES else 422
        raise ApiError(
            status, exc.code, f"uploaded file {name!r}: {exc.message}", {"code": exc.code}
        ) from None
    check_boxes(boxes, decoded.width, decoded.height)
    detector = resources.detector()
    start = time.perf_counter()
    box_array = (
        np.array([[b.x1, b.y1, b.x2, b.y2] for b in boxes], dtype=np.float32) if boxes else None
    )
    result = detector.embed([decoded.array], [box_array], detect=not boxes)[0].visible()
    resources.metrics.embed_seconds.observe(time.perf_counter() - start)
    return Embedded(
        width=decoded.width,
        height=decoded.height,
        space_key=detector.space.key,
        query_boxes=boxes,
        query_vectors=np.asarray(result.query_vectors, dtype=np.float32),
        det_boxes=np.asarray(result.boxes, dtype=np.float32),
        det_scores=np.asarray(result.scores, dtype=np.float32),
        det_classes=np.asarray(result.classes, dtype=np.int64),
        det_vectors=np.asarray(result.vectors, dtype=np.float32),
        class_names=list(detector.class_names),
    )


# ImageDecodeError codes that mean "this is not an image we accept" rather than "a broken one".
UNSUPPORTED_CODES = frozenset(
    {"not_an_image", "format_not_allowed", "nested_archive", "empty_file"}
)


def search_embedded(
    resources: Resources, emb: Embedded, k: int, filters: FilterParams, pick: Pick
) -> ImageSearchResponse:
    queries: list[QueryResult] = []
    if emb.query_boxes:
        vectors = emb.query_vectors
        for box in emb.query_boxes:
            queries.append(QueryResult(source="box", box=box, hits=[]))
    else:
        chosen = pick_detections(emb.det_boxes, emb.det_scores, emb.width, emb.height, pick)
        vectors = emb.det_vectors[chosen] if chosen else emb.det_vectors[:0]
        for i in chosen:
            x1, y1, x2, y2 = (float(v) for v in emb.det_boxes[i])
            cls = int(emb.det_classes[i])
            queries.append(
                QueryResult(
                    source="detection",
                    box=Box(x1=x1, y1=y1, x2=x2, y2=y2),
                    class_id=cls,
                    class_name=emb.class_names[cls] if cls < len(emb.class_names) else str(cls),
                    detector_score=float(emb.det_scores[i]),
                    hits=[],
                )
            )
    with resources.db.read() as session:
        space_id = session.scalar(
            select(EmbeddingSpace.id).where(EmbeddingSpace.key == emb.space_key)
        )
    if space_id is not None and queries:
        flt = build_filter(resources, space_id, filters)
        results = search_vectors(
            resources, space_id, vectors, fetch_k(k, filters.group_by), flt, kind="image"
        )
        ranked = rank(resources, space_id, results, k, filters.group_by)
        for query, found in zip(queries, ranked, strict=True):
            query.hits, query.groups = found.hits, found.groups
    return ImageSearchResponse(
        width=emb.width,
        height=emb.height,
        space_id=space_id,
        queries=queries,
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
    emb = await anyio.to_thread.run_sync(
        partial(embed_query, resources, data, name, parsed), limiter=resources.model_limiter
    )
    return await anyio.to_thread.run_sync(
        partial(search_embedded, resources, emb, k, filters, pick)
    )


@router.post(
    "/v1/search/examples",
    response_model=ExamplesResponse,
    responses=ERRORS,
    summary="Search with positive (and negative) example objects",
)
def search_examples(
    body: ExamplesRequest, resources: ResourcesDep, k: KDep, filters: FilterDep
) -> ExamplesResponse:
    """Rocchio query: centroid of the positives minus half the centroid of the negatives.

    All examples must be objects of one embedding space; they are excluded from the hits.
    """
    positive = list(dict.fromkeys(body.positive))
    negative = [i for i in dict.fromkeys(body.negative) if i not in positive]
    ids = positive + negative
    with resources.db.read() as session:
        rows = {
            o.id: o
            for o in session.scalars(select(DetectedObject).where(DetectedObject.id.in_(ids)))
        }
        missing = [i for i in ids if i not in rows]
        if missing:
            raise ApiError(
                404,
                "object_not_found",
                f"example object(s) {', '.join(map(str, missing[:20]))} do not exist",
                {"missing": missing[:100]},
            )
        spaces = {rows[i].space_id for i in ids}
        if len(spaces) > 1:
            raise ApiError(
                422,
                "mixed_spaces",
                "examples come from different embedding spaces (models); their vectors are "
                "not comparable",
                {"space_ids": sorted(spaces)},
            )
        space_id = spaces.pop()
        query = _rocchio(
            np.stack([vector_of(rows[i]) for i in positive]),
            np.stack([vector_of(rows[i]) for i in negative]) if negative else None,
        )
    flt = build_filter(resources, space_id, filters, exclude=ids)
    results = search_vectors(
        resources, space_id, query[None, :], fetch_k(k, filters.group_by), flt, kind="examples"
    )
    ranked = rank(resources, space_id, results, k, filters.group_by)[0]
    return ExamplesResponse(
        positive=positive, negative=negative, hits=ranked.hits, groups=ranked.groups
    )


def _rocchio(positive: np.ndarray, negative: np.ndarray | None) -> np.ndarray:
    """[P,D] and [N,D] unit vectors → one unit query vector [D] (float32)."""
    query = positive.mean(axis=0)
    if negative is not None and len(negative):
        query = query - NEGATIVE_WEIGHT * negative.mean(axis=0)
    norm = float(np.linalg.norm(query))
    if norm < 1e-6:
        raise ApiError(
            422,
            "degenerate_examples",
            "the positive and negative examples cancel out; give more distinct examples",
        )
    return (query / norm).astype(np.float32)
