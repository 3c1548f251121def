"""Re-enqueue chunks whose items are pending but unknown to the queue.

Redis is never the system of record: after a Redis restart without persistence (or a job
that exhausted its retries) the pending items in the database are re-enqueued here. A grace
period keeps us from re-enqueueing a chunk a worker has only just dequeued; a duplicate would
be harmless anyway (chunk processing is idempotent), only wasted work.

Ingestions still ``planning`` have no chunks yet: :func:`resume_planning` takes over those
whose planner is gone (see ``shared.ingestion.leases``), plans them again and queues them.

In embedded mode there is no reconciler: the in-process queue leases the ingestions it has
chunks of, and :func:`resume_running` queues again the pending chunks of ``running``
ingestions whose driver is gone (an API or ``roisearch ingest`` killed mid-way).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import exists, func, select

from shared.db.database import Database
from shared.db.models import Ingestion, IngestionItem, IngestionStatus, ItemStatus
from shared.ingestion.leases import STALE_S, claim, find_abandoned, lease
from shared.ingestion.pipeline import finish_if_complete
from shared.ingestion.planning import pending_chunks, resume_plan
from shared.ingestion.uploads import remove_upload_if_finished
from shared.queueing import JobQueue
from shared.settings import Settings

log = logging.getLogger(__name__)


def reconcile(
    db: Database, queue: JobQueue, *, grace_s: float = 20.0, settings: Settings | None = None
) -> int:
    """Enqueue every stale pending chunk not known to the queue; return how many. Also marks
    done the running ingestions that have nothing pending (:func:`finish_settled`)."""
    finish_settled(db, settings=settings)
    known = queue.known_chunks()
    if known is None:
        return 0
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
    total = 0
    for ingestion_id, chunks in missing.items():
        total += queue.enqueue_chunks(ingestion_id, chunks)
        log.info("reconciler re-enqueued %d chunk(s) of ingestion %d", len(chunks), ingestion_id)
    return total


def finish_settled(db: Database, *, settings: Settings | None = None) -> list[int]:
    """Mark done every ``running`` ingestion with no pending item left; return their ids.

    With ``settings``, the uploaded source of each one marked is removed.

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
        if marked and settings is not None:
            remove_upload_if_finished(db, settings, ingestion_id)
        if marked:
            log.warning("ingestion %d: nothing left pending; marked done", ingestion_id)
            finished.append(ingestion_id)
    return finished


def running_ingestions(db: Database) -> list[int]:
    with db.read() as session:
        return list(
            session.scalars(select(Ingestion.id).where(Ingestion.status == IngestionStatus.RUNNING))
        )


def resume_planning(
    db: Database, settings: Settings, queue: JobQueue, *, stale_s: float = STALE_S
) -> list[int]:
    """Plan again, then queue, every ingestion left ``planning`` by a planner that is gone.

    A planner that is alive (on this host, or beating its heartbeat from elsewhere) is left
    alone. Returns the ingestions taken over.
    """
    resumed = []
    for orphan in find_abandoned(db, [IngestionStatus.PLANNING], stale_s=stale_s):
        if not claim(db, orphan.id, [IngestionStatus.PLANNING], stale_s=stale_s):
            continue  # another process took it over first, or its planner came back
        log.warning("ingestion %d: its planner stopped mid-planning; planning it again", orphan.id)
        # Held until queued: an in-process queue takes the lease over with no gap in which
        # the planned ingestion would look driverless (see resume_running).
        with lease(db, orphan.id):
            plan = resume_plan(db, settings, orphan.id)
            queue.enqueue_chunks(plan.ingestion_id, plan.pending_chunks)
        resumed.append(orphan.id)
    return resumed


def resume_running(
    db: Database,
    queue: JobQueue,
    *,
    stale_s: float = STALE_S,
    settings: Settings | None = None,
) -> list[int]:
    """Embedded mode: queue again the pending chunks of every ``running`` ingestion whose
    driver is gone; one with none left is marked done. Returns the ingestions taken over.

    Only for an in-process queue, which leases what it holds (``make_queue``): a live driver
    (``roisearch ingest`` running it, this process's own queue) is left alone. With RQ, a
    planned ingestion holds no lease, so every one would look abandoned: there the
    reconciler recovers lost chunks instead.
    """
    resumed = []
    for orphan in find_abandoned(db, [IngestionStatus.RUNNING], stale_s=stale_s):
        if not claim(db, orphan.id, [IngestionStatus.RUNNING], stale_s=stale_s):
            continue
        with lease(db, orphan.id):
            with db.read() as session:
                chunks = pending_chunks(session, orphan.id)
            if chunks:
                log.warning(
                    "ingestion %d: its driver stopped with %d chunk(s) left; running them here",
                    orphan.id,
                    len(chunks),
                )
                queue.enqueue_chunks(orphan.id, chunks)
            else:
                with db.begin() as session:
                    finish_if_complete(session, orphan.id)
                if settings is not None:  # the uploaded source is no longer needed
                    remove_upload_if_finished(db, settings, orphan.id)
        resumed.append(orphan.id)
    return resumed
