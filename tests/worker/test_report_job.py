"""The RQ report job: enqueued by RQJobQueue.enqueue_report, run by a real RQ worker on Redis."""

from __future__ import annotations

import uuid

import pytest
from rq import SimpleWorker

from shared.db.database import Database
from shared.db.models import Report, ReportStatus
from shared.model_provider import ModelProvider
from shared.queueing import REPORT_JOB, RQJobQueue
from shared.reports.job import create_cluster_report
from shared.reports.params import ClusterParams
from shared.settings import Settings, load_settings
from tests.factories import seed_clustered
from worker.context import WorkerContext, install

pytestmark = pytest.mark.redis


def test_report_job_runs_on_rq(settings: Settings, database: Database, redis_url: str) -> None:
    rq_settings = load_settings(
        data_dir=settings.data_dir,
        database_url=settings.database_url,
        redis_url=redis_url,
        queue_name=f"report-test-{uuid.uuid4().hex}",
    )
    collection = seed_clustered(rq_settings, database, images=10, duplicates=1)
    queue = RQJobQueue.from_settings(rq_settings)
    try:
        good = create_cluster_report(database, ClusterParams(k=3))
        bad = create_cluster_report(database, ClusterParams(classes=["zebra"]))
        queue.enqueue_report(good)
        queue.enqueue_report(bad)
        jobs = queue.queue.get_jobs()
        assert [j.func_name for j in jobs] == [REPORT_JOB, REPORT_JOB]
        assert [j.args for j in jobs] == [(good,), (bad,)]
        install(
            WorkerContext(
                settings=rq_settings,
                db=database,
                models=ModelProvider(rq_settings.detector_config()),
            )
        )
        worker = SimpleWorker([queue.queue], connection=queue.connection)
        assert worker.work(burst=True)
        with database.read() as session:
            done = session.get(Report, good)
            failed = session.get(Report, bad)
            assert done is not None and failed is not None
            assert done.status == ReportStatus.DONE and done.result is not None
            assert done.result["overall"]["objects"] == len(collection.object_ids)
            # Bad parameters are a recorded outcome, not a crashed job.
            assert failed.status == ReportStatus.FAILED and failed.error_code == "unknown_class"
        assert [j.get_status() for j in jobs] == ["finished", "finished"]
        assert (rq_settings.reports_dir / str(good) / "report.html").is_file()
    finally:
        queue.queue.delete(delete_jobs=True)
        queue.connection.close()
