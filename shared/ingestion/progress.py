"""Ingestion progress: counts by status, objects found, throughput, ETA, failed items paged."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.db.models import DetectedObject, Ingestion, IngestionItem, ItemStatus


@dataclass
class FailedItem:
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

    @property
    def processed(self) -> int:
        return self.total - self.counts.get(ItemStatus.PENDING, 0)


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def ingestion_progress(
    session: Session, ingestion_id: int, *, failed_offset: int = 0, failed_limit: int = 20
) -> IngestionProgress | None:
    ingestion = session.get(Ingestion, ingestion_id)
    if ingestion is None:
        return None
    counts = {str(s): 0 for s in ItemStatus}
    for status, n in session.execute(
        select(IngestionItem.status, func.count())
        .where(IngestionItem.ingestion_id == ingestion_id)
        .group_by(IngestionItem.status)
    ):
        counts[str(status)] = int(n)
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
    if started is not None and processed:
        elapsed = max((end - started).total_seconds(), 1e-3)
        rate = processed / elapsed
        eta = counts[ItemStatus.PENDING] / rate if counts[ItemStatus.PENDING] else 0.0
    failed = [
        FailedItem(m, c, msg)
        for m, c, msg in session.execute(
            select(IngestionItem.member, IngestionItem.error_code, IngestionItem.error_message)
            .where(
                IngestionItem.ingestion_id == ingestion_id,
                IngestionItem.status == ItemStatus.FAILED,
            )
            .order_by(IngestionItem.seq)
            .offset(failed_offset)
            .limit(failed_limit)
        )
    ]
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
    )
