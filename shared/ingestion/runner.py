"""Start an ingestion: create → plan → enqueue (RQ) or run in-process (embedded mode)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared.db.database import Database
from shared.ingestion.pipeline import ChunkSummary, process_chunk
from shared.ingestion.planning import PlanSummary, create_ingestion, plan_ingestion
from shared.model_provider import ModelProvider
from shared.queueing import JobQueue
from shared.settings import Settings

ChunkCallback = Callable[[PlanSummary, ChunkSummary], None]


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


def run_plan(
    db: Database,
    settings: Settings,
    models: ModelProvider,
    plan: PlanSummary,
    on_chunk: ChunkCallback | None = None,
) -> None:
    """Embedded mode: process every pending chunk in this process, in order."""
    detector = models.get()
    for chunk in plan.pending_chunks:
        summary = process_chunk(db, settings, detector, plan.ingestion_id, chunk)
        if on_chunk is not None:
            on_chunk(plan, summary)
