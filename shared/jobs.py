"""The jobs an in-process queue runs, registered by name: the composition the queues never do.

``shared.queueing`` knows jobs by name only (RQ imports ``worker.jobs`` by dotted path); this
module gives an in-process queue (embedded mode) the functions behind the same names, so that
the queue adapters never import ingestion or reports.
"""

from __future__ import annotations

from functools import partial

from shared.db.database import Database
from shared.ingestion.leases import lease
from shared.ingestion.pipeline import process_chunk
from shared.model_provider import ModelProvider
from shared.queueing import CHUNK_JOB, REPORT_JOB, Handlers, InProcessJobQueue, RQJobQueue
from shared.reports.job import run_cluster_report
from shared.settings import Settings


def in_process_handlers(settings: Settings, db: Database, models: ModelProvider) -> Handlers:
    """The chunk and report jobs, run in this process with its model and database."""

    ingestion = settings.ingestion_config()
    reports = settings.report_config()

    def run_chunk(ingestion_id: int, chunk: int) -> object:
        detector = models.get()
        return process_chunk(db, ingestion, detector, ingestion_id, chunk, streams=models.streams)

    def run_report(report_id: int) -> object:
        return run_cluster_report(db, reports, report_id)

    return {CHUNK_JOB: run_chunk, REPORT_JOB: run_report}


def make_queue(
    settings: Settings, db: Database, models: ModelProvider | None = None
) -> RQJobQueue | InProcessJobQueue:
    """RQ when Redis is configured; otherwise an in-process queue running the same logic,
    holding the lease of the ingestions it has chunks of (so that no other process, and no
    re-planning pass of this one, takes them over meanwhile)."""
    if settings.redis_url is not None:
        return RQJobQueue.from_settings(settings)
    handlers = in_process_handlers(
        settings, db, models or ModelProvider(settings.detector_config())
    )
    return InProcessJobQueue(handlers, hold=partial(lease, db))
