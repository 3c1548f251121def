"""Ingestion progress: counts by status, objects found, throughput, ETA, and the failed and
skipped items (each with its code and message) paged."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.db.models import DetectedObject, Ingestion, IngestionItem, ItemStatus


@dataclass
class FailedItem:
    """A failed or skipped item with its reason."""

    member: str
    error_code: str | None
    error_message: str | None


@dataclass
class IngestionProgress:
    id: int
    source: str
    source_kind: str
    status: str
    total: int
    counts: dict[str, int]
    objects: int
    images_per_s: float | None
    eta_s: float | None
    error_code: str | None
    error_message: str | None
    created_at: datetime
    finished_at: datetime | None
    failed: list[FailedItem] = field(default_factory=list)
    # Members that are not images at all (not_an_image, empty_file): not failures, but the
    # user still has to see which members were left out and why.
    skipped: list[FailedItem] = field(default_factory=list)

    @property
    def processed(self) -> int:
        return self.total - self.counts.get(ItemStatus.PENDING, 0)


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def item_counts(session: Session, ingestion_id: int) -> dict[str, int]:
    """Items per status (every status present, 0 when none): cheap enough to poll per chunk."""
    counts = {str(s): 0 for s in ItemStatus}
    for status, n in session.execute(
        select(IngestionItem.status, func.count())
        .where(IngestionItem.ingestion_id == ingestion_id)
        .group_by(IngestionItem.status)
    ):
        counts[str(status)] = int(n)
    return counts


def items_in_status(
    session: Session, ingestion_id: int, status: ItemStatus, offset: int, limit: int
) -> Sequence[IngestionItem]:
    """A page of the ingestion's items in ``status``, in source order.

    The one listing of failed and skipped items: the CLI (through :func:`ingestion_progress`)
    and the API's ingestion detail page them alike.
    """
    return session.scalars(
        select(IngestionItem)
        .where(IngestionItem.ingestion_id == ingestion_id, IngestionItem.status == status)
        .order_by(IngestionItem.seq, IngestionItem.id)
        .offset(offset)
        .limit(limit)
    ).all()


def throughput(processed: int, done: int, elapsed_s: float) -> float | None:
    """Items per second of a run, or None when no image was processed.

    A source that failed at once, or held only members that are not images, has no speed:
    dividing its instant end by a clamped millisecond reported 1000 images/s.
    """
    if done <= 0 or elapsed_s <= 0:
        return None
    return processed / max(elapsed_s, 1e-3)


def _items_with_reasons(
    session: Session, ingestion_id: int, status: ItemStatus, offset: int, limit: int
) -> list[FailedItem]:
    if limit <= 0:  # a summary only (the CLI's list): no query
        return []
    return [
        FailedItem(item.member, item.error_code, item.error_message)
        for item in items_in_status(session, ingestion_id, status, offset, limit)
    ]


def ingestion_progress(
    session: Session,
    ingestion_id: int,
    *,
    failed_offset: int = 0,
    failed_limit: int = 20,
    skipped_offset: int = 0,
    skipped_limit: int = 20,
) -> IngestionProgress | None:
    ingestion = session.get(Ingestion, ingestion_id)
    if ingestion is None:
        return None
    counts = item_counts(session, ingestion_id)
    total = sum(counts.values())
    image_ids = (
        select(IngestionItem.image_id)
        .where(IngestionItem.ingestion_id == ingestion_id, IngestionItem.image_id.is_not(None))
        .distinct()
        .scalar_subquery()
    )
    objects = session.scalar(
        select(func.count())
        .select_from(DetectedObject)
        .where(DetectedObject.image_id.in_(image_ids))
    )
    processed = total - counts[ItemStatus.PENDING]
    started = _aware(ingestion.started_at)
    end = _aware(ingestion.finished_at) or datetime.now(UTC)
    rate = eta = None
    if started is not None:
        rate = throughput(processed, counts[ItemStatus.DONE], (end - started).total_seconds())
    if rate is not None:
        eta = counts[ItemStatus.PENDING] / rate if counts[ItemStatus.PENDING] else 0.0
    failed = _items_with_reasons(
        session, ingestion_id, ItemStatus.FAILED, failed_offset, failed_limit
    )
    skipped = _items_with_reasons(
        session, ingestion_id, ItemStatus.SKIPPED, skipped_offset, skipped_limit
    )
    return IngestionProgress(
        id=ingestion.id,
        source=str(ingestion.options.get("display_name") or ingestion.source),
        source_kind=ingestion.source_kind,
        status=ingestion.status,
        total=total,
        counts=counts,
        objects=int(objects or 0),
        images_per_s=rate,
        eta_s=eta,
        error_code=ingestion.error_code,
        error_message=ingestion.error_message,
        created_at=ingestion.created_at,
        finished_at=ingestion.finished_at,
        failed=failed,
        skipped=skipped,
    )
