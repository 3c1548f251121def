"""Ingestions: start one (upload or server-side path), follow its progress, delete it."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from api.dependencies import PageDep, PageParams, ResourcesDep
from api.errors import not_found
from api.ingestion_start import start_from_request
from api.schemas import (
    DeleteResponse,
    ErrorResponse,
    IngestionCounts,
    IngestionDetail,
    IngestionItemOut,
    IngestionList,
    IngestionOut,
    IngestionPathRequest,
    ItemList,
    Page,
)
from shared.db.models import DetectedObject, Ingestion, IngestionItem, IngestionStatus, ItemStatus
from shared.ingestion.progress import ingestion_progress, items_in_status, throughput

router = APIRouter(tags=["ingestions"])
ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": ErrorResponse}}
IngestionId = Annotated[int, Path(ge=1, le=2**62, description="Ingestion id")]
RATE_WINDOW_S = 60
FAILED_PAGE_SIZE = 50


def _aware(value: datetime | None) -> datetime | None:
    # SQLite returns naive datetimes (stored in UTC by func.now()).
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _counts(session: Session, ingestion_ids: list[int]) -> dict[int, IngestionCounts]:
    out = {i: IngestionCounts() for i in ingestion_ids}
    rows = session.execute(
        select(IngestionItem.ingestion_id, IngestionItem.status, func.count())
        .where(IngestionItem.ingestion_id.in_(ingestion_ids))
        .group_by(IngestionItem.ingestion_id, IngestionItem.status)
    ).all()
    for ingestion_id, status, count in rows:
        if status in IngestionCounts.model_fields:
            setattr(out[ingestion_id], status, int(count))
    return out


def _objects_found(session: Session, ingestion_ids: list[int]) -> dict[int, int]:
    rows = session.execute(
        select(IngestionItem.ingestion_id, func.count(distinct(DetectedObject.id)))
        .join(DetectedObject, DetectedObject.image_id == IngestionItem.image_id)
        .where(IngestionItem.ingestion_id.in_(ingestion_ids))
        .group_by(IngestionItem.ingestion_id)
    ).all()
    return {int(i): int(n) for i, n in rows}


def _recent_rate(session: Session, ingestion_id: int, now: datetime) -> float:
    since = now - timedelta(seconds=RATE_WINDOW_S)
    finished = (
        session.scalar(
            select(func.count()).where(
                IngestionItem.ingestion_id == ingestion_id,
                IngestionItem.status != ItemStatus.PENDING,
                IngestionItem.updated_at >= since,
            )
        )
        or 0
    )
    return finished / RATE_WINDOW_S


def ingestion_out(
    session: Session,
    ingestion: Ingestion,
    counts: IngestionCounts,
    objects_found: int,
) -> IngestionOut:
    """Status with throughput: items/s over the whole run once finished, else the last minute."""
    now = datetime.now(UTC)
    started = _aware(ingestion.started_at) or _aware(ingestion.created_at)
    finished_at = _aware(ingestion.finished_at)
    processed = counts.done + counts.failed + counts.skipped
    rate: float | None = None
    eta: float | None = None
    if finished_at is not None and started is not None:
        rate = throughput(processed, counts.done, (finished_at - started).total_seconds())
    elif ingestion.status == IngestionStatus.RUNNING:
        rate = _recent_rate(session, ingestion.id, now) if counts.done else None
        if rate == 0.0 and started is not None:
            rate = throughput(processed, counts.done, (now - started).total_seconds())
        eta = counts.pending / rate if rate else None
    return IngestionOut(
        id=ingestion.id,
        source=str(ingestion.options.get("display_name") or ingestion.source),
        source_kind=ingestion.source_kind,
        status=ingestion.status,
        total_items=ingestion.total_items,
        counts=counts,
        objects_found=objects_found,
        images_per_s=round(rate, 3) if rate is not None else None,
        eta_s=round(eta, 1) if eta is not None else None,
        created_at=ingestion.created_at,
        started_at=ingestion.started_at,
        finished_at=ingestion.finished_at,
        error_code=ingestion.error_code,
        error_message=ingestion.error_message,
    )


def item_out(item: IngestionItem) -> IngestionItemOut:
    return IngestionItemOut(
        id=item.id,
        member=item.member,
        status=item.status,
        error_code=item.error_code,
        error_message=item.error_message,
        image_id=item.image_id,
        attempts=item.attempts,
    )


def _items(
    session: Session, ingestion_id: int, status: str | None, page: PageParams
) -> tuple[int, list[IngestionItemOut]]:
    conditions = [IngestionItem.ingestion_id == ingestion_id]
    if status is not None:
        conditions.append(IngestionItem.status == status)
    total = session.scalar(select(func.count(IngestionItem.id)).where(*conditions)) or 0
    rows = session.scalars(
        select(IngestionItem)
        .where(*conditions)
        .order_by(IngestionItem.seq, IngestionItem.id)
        .offset(page.offset)
        .limit(page.page_size)
    ).all()
    return total, [item_out(i) for i in rows]


def _page_in_status(
    session: Session, ingestion_id: int, status: ItemStatus, page: PageParams
) -> list[IngestionItemOut]:
    items = items_in_status(session, ingestion_id, status, page.offset, page.page_size)
    return [item_out(item) for item in items]


@router.post(
    "/v1/ingestions",
    response_model=IngestionOut,
    status_code=202,
    responses={
        **ERRORS,
        403: {"model": ErrorResponse},
        413: {"model": ErrorResponse},
        415: {"model": ErrorResponse},
        422: {"model": ErrorResponse},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "files": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                                "description": "An archive (.zip, .tar, .tar.gz, .tgz) or images",
                            }
                        },
                        "required": ["files"],
                    }
                },
                "application/json": {
                    "schema": IngestionPathRequest.model_json_schema(),
                    "example": {"path": "archives/street.zip"},
                },
            },
        }
    },
    summary="Start an ingestion from an upload or a server-side path",
)
async def create_ingestion(request: Request, resources: ResourcesDep) -> IngestionOut:
    """Multipart upload (``files``: one archive or several images) or JSON ``{"path": …}``.

    A path must lie inside one of the configured import roots. The items are planned in the
    database, then queued; follow progress with ``GET /v1/ingestions/{id}``.
    """
    ingestion_id = await start_from_request(request, resources)
    with resources.db.read() as session:
        ingestion = session.get(Ingestion, ingestion_id)
        assert ingestion is not None
        counts = _counts(session, [ingestion_id])[ingestion_id]
        return ingestion_out(session, ingestion, counts, 0)


@router.get("/v1/ingestions", response_model=IngestionList, summary="List ingestions")
def list_ingestions(resources: ResourcesDep, page: PageDep) -> IngestionList:
    """Newest first."""
    with resources.db.read() as session:
        total = session.scalar(select(func.count(Ingestion.id))) or 0
        rows = session.scalars(
            select(Ingestion)
            .order_by(Ingestion.id.desc())
            .offset(page.offset)
            .limit(page.page_size)
        ).all()
        ids = [r.id for r in rows]
        counts = _counts(session, ids)
        found = _objects_found(session, ids)
        out = [ingestion_out(session, r, counts[r.id], found.get(r.id, 0)) for r in rows]
    return IngestionList(
        page=Page(page=page.page, page_size=page.page_size, total=total), ingestions=out
    )


@router.get(
    "/v1/ingestions/{ingestion_id}",
    response_model=IngestionDetail,
    responses=ERRORS,
    summary="Progress of one ingestion, with failed and skipped items paged",
)
def get_ingestion(
    ingestion_id: IngestionId,
    resources: ResourcesDep,
    page: PageDep,
) -> IngestionDetail:
    """Counts by status, objects found, images/s, ETA, and a page each of the failed items
    and of the skipped ones (members that are not images), with codes and messages.

    ``page``/``page_size`` page both lists; ``GET /v1/ingestions/{id}/items?status=…`` pages
    one of them on its own.
    """
    with resources.db.read() as session:
        # Held here, so that ingestion_progress's own get finds it in the session (whose
        # identity map is weak) instead of selecting it again.
        ingestion = session.get(Ingestion, ingestion_id)
        # Counts, objects and the item lists as `roisearch ingest` reports them; only the
        # rate differs (the API's is over the last minute while running).
        progress = ingestion_progress(session, ingestion_id, failed_limit=0, skipped_limit=0)
        if ingestion is None or progress is None:
            raise not_found("ingestion", ingestion_id)
        counts = IngestionCounts(
            **{name: progress.counts.get(name, 0) for name in IngestionCounts.model_fields}
        )
        base = ingestion_out(session, ingestion, counts, progress.objects)
        failed = _page_in_status(session, ingestion_id, ItemStatus.FAILED, page)
        skipped = _page_in_status(session, ingestion_id, ItemStatus.SKIPPED, page)
    return IngestionDetail(
        **base.model_dump(),
        failed_items=failed,
        failed_page=Page(page=page.page, page_size=page.page_size, total=counts.failed),
        skipped_items=skipped,
        skipped_page=Page(page=page.page, page_size=page.page_size, total=counts.skipped),
    )


@router.get(
    "/v1/ingestions/{ingestion_id}/items",
    response_model=ItemList,
    responses=ERRORS,
    summary="Items of an ingestion, optionally by status",
)
def list_items(
    ingestion_id: IngestionId,
    resources: ResourcesDep,
    page: PageDep,
    status: Annotated[ItemStatus | None, Query(description="Only items in this status")] = None,
) -> ItemList:
    with resources.db.read() as session:
        if session.get(Ingestion, ingestion_id) is None:
            raise not_found("ingestion", ingestion_id)
        total, items = _items(session, ingestion_id, status, page)
    return ItemList(page=Page(page=page.page, page_size=page.page_size, total=total), items=items)


@router.delete(
    "/v1/ingestions/{ingestion_id}",
    response_model=DeleteResponse,
    responses=ERRORS,
    summary="Delete an ingestion and remove its images' objects from search",
)
def remove_ingestion(ingestion_id: IngestionId, resources: ResourcesDep) -> DeleteResponse:
    """Images that another ingestion also contains are kept (with their objects)."""
    return DeleteResponse(**asdict(resources.deletion.delete_ingestion(ingestion_id)))
