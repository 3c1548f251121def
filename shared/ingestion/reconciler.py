"""The reconciler's queries: chunks whose items are pending but that no queue knows, and
running ingestions with nothing left pending (``IngestionSupervisor.reconcile`` acts on them).

Redis is never the system of record: after a Redis restart without persistence (or a job
that exhausted its retries) the pending items in the database are queued again. A grace
period keeps us from re-enqueueing a chunk a worker has only just dequeued; a duplicate would
be harmless anyway (chunk processing is idempotent), only wasted work.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import exists, func, select

from shared.db.database import Database
from shared.db.models import Ingestion, IngestionItem, IngestionStatus, ItemStatus
from shared.ingestion.pipeline import finish_if_complete
from shared.ingestion.uploads import remove_upload_if_finished

log = logging.getLogger(__name__)

# A chunk whose items were touched this recently may have just been claimed by a worker.
GRACE_S = 20.0


def lost_chunks(
    db: Database, known: set[tuple[int, int]], *, grace_s: float = GRACE_S
) -> dict[int, list[int]]:
    """Chunks of running ingestions with pending items last touched more than ``grace_s`` ago
    and absent from ``known`` (the queue's ``(ingestion, chunk)`` pairs), by ingestion."""
    cutoff = datetime.now(UTC) - timedelta(seconds=grace_s)
    with db.read() as session:
        rows = session.execute(
            select(IngestionItem.ingestion_id, IngestionItem.chunk)
            .join(Ingestion, Ingestion.id == IngestionItem.ingestion_id)
            .where(
                Ingestion.status == IngestionStatus.RUNNING,
                IngestionItem.status == ItemStatus.PENDING,
            )
            .group_by(IngestionItem.ingestion_id, IngestionItem.chunk)
            .having(func.max(IngestionItem.updated_at) < cutoff)
        ).all()
    missing: dict[int, list[int]] = {}
    for ingestion_id, chunk in rows:
        if (ingestion_id, chunk) not in known:
            missing.setdefault(ingestion_id, []).append(chunk)
    return missing


def finish_settled(db: Database, data_dir: Path | None = None) -> list[int]:
    """Mark done every ``running`` ingestion with no pending item left; return their ids.
    With ``data_dir``, the uploaded source of each one marked is removed.

    The last chunk's transaction normally does it (``finish_if_complete``); this catches an
    ingestion whose last chunks finished without it (a version before the row lock there, a
    crash between commits), which no chunk would ever finish again.
    """
    pending = exists().where(
        IngestionItem.ingestion_id == Ingestion.id, IngestionItem.status == ItemStatus.PENDING
    )
    with db.read() as session:
        settled = list(
            session.scalars(
                select(Ingestion.id).where(Ingestion.status == IngestionStatus.RUNNING, ~pending)
            )
        )
    finished = []
    for ingestion_id in settled:
        with db.begin() as session:
            marked = finish_if_complete(session, ingestion_id)
        if marked and data_dir is not None:
            remove_upload_if_finished(db, data_dir, ingestion_id)
        if marked:
            log.warning("ingestion %d: nothing left pending; marked done", ingestion_id)
            finished.append(ingestion_id)
    return finished


def running_ingestions(db: Database) -> list[int]:
    with db.read() as session:
        return list(
            session.scalars(select(Ingestion.id).where(Ingestion.status == IngestionStatus.RUNNING))
        )
