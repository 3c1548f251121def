"""Start an ingestion: create → plan → enqueue (RQ) or run in-process (embedded mode).

Embedded runs (``roisearch ingest`` without Redis) have no queue and no reconciler to finish
what a killed or failed run left: the next embedded run does it. :func:`start_or_resume`
resumes the interrupted ingestion of the same source instead of creating a second one, and
:func:`resume_interrupted` finishes the others. A run in progress is protected by its lease
(``shared.ingestion.leases``): only ingestions whose process is gone are taken over.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shared.db.database import Database
from shared.db.models import Ingestion, IngestionStatus
from shared.ingestion.leases import STALE_S, Orphan, claim, find_abandoned, lease
from shared.ingestion.pipeline import ChunkSummary, finish_if_complete, process_chunk
from shared.ingestion.planning import (
    PlanSummary,
    create_ingestion,
    plan_ingestion,
    plan_summary,
    resume_plan,
)
from shared.ingestion.uploads import remove_upload_if_finished
from shared.model_provider import ModelProvider
from shared.queueing import JobQueue
from shared.settings import Settings

ChunkCallback = Callable[[PlanSummary, ChunkSummary], None]
log = logging.getLogger(__name__)

# options["runner"] of ingestions whose chunks run in the process that started them.
EMBEDDED = "embedded"
UNFINISHED = (IngestionStatus.PLANNING, IngestionStatus.RUNNING)


def start_ingestion(
    db: Database,
    settings: Settings,
    source: Path,
    *,
    options: dict[str, Any] | None = None,
    kind: str | None = None,
) -> PlanSummary:
    """Create and plan an ingestion of ``source``; nothing is processed yet."""
    with db.begin() as session:
        ingestion_id = create_ingestion(session, source, kind=kind, options=options).id
    return plan_ingestion(db, settings, ingestion_id)


def enqueue_plan(queue: JobQueue, plan: PlanSummary) -> int:
    return queue.enqueue_chunks(plan.ingestion_id, plan.pending_chunks)


def start_and_enqueue(
    db: Database,
    settings: Settings,
    queue: JobQueue,
    source: Path,
    *,
    options: dict[str, Any] | None = None,
) -> PlanSummary:
    """Create, plan and queue an ingestion of ``source``, holding its lease throughout.

    Between the end of planning and the queueing of its chunks the ingestion would otherwise
    be ``running`` with no driver, free for another process to take over; an in-process queue
    (embedded mode) takes the lease over from here, RQ's chunks are the reconciler's.
    """
    with db.begin() as session:
        ingestion_id = create_ingestion(session, source, options=options).id
    with lease(db, ingestion_id):
        plan = plan_ingestion(db, settings, ingestion_id)
        enqueue_plan(queue, plan)
    return plan


def run_plan(
    db: Database,
    settings: Settings,
    models: ModelProvider,
    plan: PlanSummary,
    on_chunk: ChunkCallback | None = None,
) -> None:
    """Embedded mode: process every pending chunk in this process, in order.

    Holds the ingestion's lease meanwhile, so that another embedded run leaves it alone while
    this process lives, and takes it over once it does not.
    """
    with lease(db, plan.ingestion_id):
        detector = models.get()
        for chunk in plan.pending_chunks:
            summary = process_chunk(
                db, settings, detector, plan.ingestion_id, chunk, streams=models.streams
            )
            if on_chunk is not None:
                on_chunk(plan, summary)


def interrupted_embedded(db: Database, *, stale_s: float = STALE_S) -> list[Orphan]:
    """Embedded ingestions left planning or running by a process that is gone, oldest first."""
    return [
        orphan
        for orphan in find_abandoned(db, UNFINISHED, stale_s=stale_s)
        if orphan.options.get("runner") == EMBEDDED
    ]


def resume_claimed(db: Database, settings: Settings, ingestion_id: int) -> PlanSummary:
    """What is left to run of an ingestion this process has claimed: re-planned if its
    planning was interrupted, else its pending chunks (an ingestion with none is finished)."""
    with db.read() as session:
        status = session.get_one(Ingestion, ingestion_id).status
        summary = (
            None if status == IngestionStatus.PLANNING else plan_summary(session, ingestion_id)
        )
    if summary is None:
        return resume_plan(db, settings, ingestion_id)
    if not summary.pending_chunks:
        with db.begin() as session:
            finish_if_complete(session, ingestion_id)
        remove_upload_if_finished(db, settings, ingestion_id)
    return summary


@contextmanager
def start_or_resume(
    db: Database,
    settings: Settings,
    source: Path,
    *,
    options: dict[str, Any] | None = None,
    stale_s: float = STALE_S,
) -> Iterator[PlanSummary]:
    """The ingestion an embedded run of ``source`` works on, planned, leased to this process
    until the block ends (run its chunks inside: :func:`run_plan` holds the same lease).

    The interrupted embedded ingestion of the same source if there is one (re-running a
    source after a crash or a full disk resumes it: no second ingestion, nothing processed
    twice), else a new one. ``source`` is compared as given: pass a resolved path. The lease
    is held from creation (or claim) on: between planning and the run a released lease would
    let another embedded run take the ingestion over at once.
    """
    for orphan in interrupted_embedded(db, stale_s=stale_s):
        if orphan.source == str(source) and claim(db, orphan.id, UNFINISHED, stale_s=stale_s):
            log.info("resuming interrupted ingestion %d of %s", orphan.id, source)
            with lease(db, orphan.id):
                yield resume_claimed(db, settings, orphan.id)
            return
    with db.begin() as session:
        ingestion_id = create_ingestion(
            session, source, options={**(options or {}), "runner": EMBEDDED}
        ).id
    with lease(db, ingestion_id):
        yield plan_ingestion(db, settings, ingestion_id)


def resume_interrupted(
    db: Database,
    settings: Settings,
    models: ModelProvider,
    *,
    on_plan: Callable[[PlanSummary], None] | None = None,
    on_chunk: ChunkCallback | None = None,
    stale_s: float = STALE_S,
) -> list[PlanSummary]:
    """Finish every embedded ingestion whose process is gone (run by the next embedded run).

    ``on_plan`` is called with each one before its chunks run.
    """
    resumed = []
    for orphan in interrupted_embedded(db, stale_s=stale_s):
        if not claim(db, orphan.id, UNFINISHED, stale_s=stale_s):
            continue
        log.info("finishing interrupted ingestion %d of %s", orphan.id, orphan.source)
        with lease(db, orphan.id):  # from the claim to the end of the run, without a gap
            plan = resume_claimed(db, settings, orphan.id)
            if on_plan is not None:
                on_plan(plan)
            run_plan(db, settings, models, plan, on_chunk=on_chunk)
        resumed.append(plan)
    return resumed
