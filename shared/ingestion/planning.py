"""Durable plan first, queue second: enumerate a source into ingestion-item rows.

Planning is idempotent (unique ``(ingestion_id, member)``): re-planning the same ingestion
adds nothing. Refused members are recorded as failed items with their reason right away.

The planner holds the ingestion's lease (``shared.ingestion.leases``) while it plans, so that
an ingestion whose planner was killed (the API SIGKILLed mid-upload, say) is recognised and
planned again (:func:`resume_plan`) instead of staying ``planning`` forever.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, literal, select, update
from sqlalchemy.orm import Session

from shared.db.database import Database
from shared.db.models import Ingestion, IngestionItem, IngestionStatus, ItemStatus
from shared.db.upserts import insert_ignore
from shared.imaging.store import store_original
from shared.ingestion.config import IngestionConfig
from shared.ingestion.labelling import attach_labels
from shared.ingestion.leases import lease, owner_id
from shared.ingestion.sources import (
    Member,
    SourceError,
    list_members,
    source_kind,
)
from shared.ingestion.tar_stream import iter_tar
from shared.ingestion.uploads import remove_upload_if_finished

INSERT_BATCH = 1000


@dataclass
class PlanSummary:
    ingestion_id: int
    total_items: int
    refused: int
    pending_chunks: list[int] = field(default_factory=list)
    error: str | None = None


def create_ingestion(
    session: Session,
    source: Path,
    *,
    kind: str | None = None,
    options: dict[str, Any] | None = None,
) -> Ingestion:
    """Add an ingestion row for ``source`` (status planning). The caller commits.

    The row is leased to this process from the start: if it dies before planning begins, the
    ingestion is recognised as orphaned at once.
    """
    ingestion = Ingestion(
        source=str(source),
        source_kind=kind or source_kind(source),
        status=IngestionStatus.PLANNING,
        options=options or {},
        lease_owner=owner_id(),
    )
    session.add(ingestion)
    session.flush()
    return ingestion


def _rows(
    ingestion_id: int, settings: IngestionConfig, path: Path, kind: str
) -> Iterator[dict[str, Any]]:
    seq = 0

    def row(member: Member, staged: str | None) -> dict[str, Any]:
        nonlocal seq
        r = {
            "ingestion_id": ingestion_id,
            "member": member.name,
            "seq": seq,
            "chunk": seq // settings.chunk_size,
            "size": member.size,
            "status": ItemStatus.FAILED if member.refusal else ItemStatus.PENDING,
            "error_code": member.refusal.code if member.refusal else None,
            "error_message": member.refusal.message if member.refusal else None,
            "staged_sha256": staged,
            "attempts": 0,
        }
        seq += 1
        return r

    if kind == "tar":
        for entry in iter_tar(path, settings):
            staged = None
            if entry.data is not None:
                # A tar stream cannot seek: keep the member's bytes in the content store now.
                staged = hashlib.sha256(entry.data).hexdigest()
                store_original(settings.data_dir, staged, entry.data)
            yield row(entry.member, staged)
    else:
        for member in list_members(path, kind, settings):
            yield row(member, None)


def plan_ingestion(db: Database, settings: IngestionConfig, ingestion_id: int) -> PlanSummary:
    """Enumerate the ingestion's source into items (in batches) and mark it running.

    A source that cannot be read marks the ingestion failed with a stable code; the items
    planned before the failure are kept. Holds the ingestion's lease while it runs.
    """
    with lease(db, ingestion_id):
        return _plan(db, settings, ingestion_id)


def _plan(db: Database, settings: IngestionConfig, ingestion_id: int) -> PlanSummary:
    with db.read() as session:
        ingestion = session.get(Ingestion, ingestion_id)
        if ingestion is None:
            raise LookupError(f"ingestion {ingestion_id} does not exist")
        path, kind = Path(ingestion.source), ingestion.source_kind
    error: SourceError | None = None
    batch: list[dict[str, Any]] = []
    try:
        if not path.exists():
            raise SourceError("source_not_found", f"{path} does not exist")
        for row in _rows(ingestion_id, settings, path, kind):
            batch.append(row)
            if len(batch) >= INSERT_BATCH:
                _insert(db, batch)
                batch = []
    except SourceError as exc:
        error = exc
    if batch:
        _insert(db, batch)
    if error is None:
        # Annotation files → labels of their images, before the chunks are counted.
        attach_labels(db, settings, ingestion_id, path, kind)
    with db.begin() as session:
        total, refused, chunks = _tally(session, ingestion_id)
        values: dict[str, Any] = {
            "total_items": total,
            "chunk_count": (max(chunks) + 1) if chunks else 0,
            "started_at": datetime.now(UTC),
        }
        if error is not None and not total:
            values |= {
                "status": IngestionStatus.FAILED,
                "error_code": error.code,
                "error_message": error.message,
                "finished_at": datetime.now(UTC),
            }
        elif error is not None:
            values |= {"error_code": error.code, "error_message": error.message}
        if values.get("status") != IngestionStatus.FAILED:
            values["status"] = IngestionStatus.RUNNING if chunks else IngestionStatus.DONE
            if not chunks:
                values["finished_at"] = datetime.now(UTC)
        # Only a planning ingestion: one cancelled meanwhile, or finished by a second planner
        # that took over while this one looked dead, keeps its state.
        session.execute(
            update(Ingestion)
            .where(Ingestion.id == ingestion_id, Ingestion.status == IngestionStatus.PLANNING)
            .values(**values)
        )
    remove_upload_if_finished(db, settings.data_dir, ingestion_id)  # failed, or nothing to run
    return PlanSummary(
        ingestion_id=ingestion_id,
        total_items=total,
        refused=refused,
        pending_chunks=chunks,
        error=error.message if error else None,
    )


def _tally(session: Session, ingestion_id: int) -> tuple[int, int, list[int]]:
    """Items, items refused at planning (failed), pending chunks."""
    total = session.scalar(select(func.count()).where(IngestionItem.ingestion_id == ingestion_id))
    refused = session.scalar(
        select(func.count()).where(
            IngestionItem.ingestion_id == ingestion_id,
            IngestionItem.status == ItemStatus.FAILED,
        )
    )
    return total or 0, refused or 0, pending_chunks(session, ingestion_id)


def plan_summary(session: Session, ingestion_id: int) -> PlanSummary:
    """The plan of an ingestion already planned (what is left to run when resuming it)."""
    total, refused, chunks = _tally(session, ingestion_id)
    error = session.scalar(select(Ingestion.error_message).where(Ingestion.id == ingestion_id))
    return PlanSummary(ingestion_id, total, refused, chunks, error)


def resume_plan(db: Database, settings: IngestionConfig, ingestion_id: int) -> PlanSummary:
    """Plan again an ingestion whose planner stopped midway (the caller claimed it).

    Re-planning is idempotent, so the items planned before the interruption are kept and the
    rest are added. When the source is gone (an upload directory removed, a path unmounted),
    the ingestion and whatever items it has pending fail with ``planning_interrupted``.
    """
    with db.read() as session:
        source = session.scalar(select(Ingestion.source).where(Ingestion.id == ingestion_id))
    if source is None:
        raise LookupError(f"ingestion {ingestion_id} does not exist")
    if Path(source).exists():
        return plan_ingestion(db, settings, ingestion_id)
    with db.begin() as session:
        fail_interrupted(
            session,
            ingestion_id,
            "planning_interrupted",
            # No path: ingestion messages reach API clients, server paths must not.
            "planning was interrupted (the process planning it stopped) and its source is no "
            "longer there to plan it again",
        )
        return plan_summary(session, ingestion_id)


def fail_interrupted(session: Session, ingestion_id: int, code: str, message: str) -> None:
    """Fail an unfinished ingestion and its pending items (each message naming its member).

    Inside the caller's transaction. Nothing is left pending: every member stays accounted for.
    """
    session.execute(
        update(IngestionItem)
        .where(
            IngestionItem.ingestion_id == ingestion_id,
            IngestionItem.status == ItemStatus.PENDING,
        )
        .values(
            status=ItemStatus.FAILED,
            error_code=code,
            error_message=IngestionItem.member + literal(f": not processed: {message}"),
        )
    )
    total = session.scalar(select(func.count()).where(IngestionItem.ingestion_id == ingestion_id))
    session.execute(
        update(Ingestion)
        .where(
            Ingestion.id == ingestion_id,
            Ingestion.status.in_([IngestionStatus.PLANNING, IngestionStatus.RUNNING]),
        )
        .values(
            status=IngestionStatus.FAILED,
            error_code=code,
            error_message=message,
            total_items=total or 0,
            finished_at=datetime.now(UTC),
            lease_owner=None,
        )
    )


def _insert(db: Database, rows: list[dict[str, Any]]) -> None:
    with db.begin() as session:
        insert_ignore(session, IngestionItem.__table__, rows)  # type: ignore[arg-type]


def pending_chunks(session: Session, ingestion_id: int) -> list[int]:
    """Chunks of this ingestion that still have pending items, ascending."""
    return list(
        session.scalars(
            select(IngestionItem.chunk)
            .where(
                IngestionItem.ingestion_id == ingestion_id,
                IngestionItem.status == ItemStatus.PENDING,
            )
            .distinct()
            .order_by(IngestionItem.chunk)
        )
    )
