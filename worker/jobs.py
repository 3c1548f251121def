"""RQ job functions: plain, importable, take ids only, idempotent, safe to retry."""

from __future__ import annotations

from shared.ingestion.pipeline import ChunkSummary
from shared.ingestion.pipeline import process_chunk as _process_chunk
from shared.reports.job import run_cluster_report
from worker.context import current


def process_chunk(ingestion_id: int, chunk: int) -> dict[str, int]:
    """Detect and embed the pending items of one chunk of an ingestion."""
    ctx = current()
    summary: ChunkSummary = _process_chunk(
        ctx.db, ctx.ingestion, ctx.models.get(), ingestion_id, chunk, streams=ctx.models.streams
    )
    return {"done": summary.done, "failed": summary.failed, "objects": summary.objects}


def run_report(report_id: int) -> str:
    """Compute one queued report (``REPORT_JOB``); returns its final status."""
    ctx = current()
    return run_cluster_report(ctx.db, ctx.settings.report_config(), report_id)
