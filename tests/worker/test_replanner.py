"""The worker's re-planner thread: an ingestion left ``planning`` by a planner that was
SIGKILLed (an API killed mid-upload) is planned again and queued by a running worker, without
anyone calling it (real PostgreSQL/SQLite and Redis, a real killed planner process)."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest

from shared.db.database import Database
from shared.db.models import Ingestion, IngestionStatus
from shared.queueing import RQJobQueue, parse_chunk_job_id
from shared.settings import load_settings
from tests.shared.imaging.corpus import jpeg
from tests.shared.ingestion.scenarios import plan_in_a_killed_process
from worker import main as worker_main

pytestmark = pytest.mark.redis


def test_the_worker_replans_an_ingestion_whose_planner_was_killed(
    tmp_path: Path, db_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_main, "REPLAN_INTERVAL_S", 0.2)
    settings = load_settings(
        data_dir=tmp_path / "data",
        database_url=db_url,
        redis_url=redis_url,
        queue_name=f"test-replan-{uuid.uuid4().hex[:8]}",
        chunk_size=4,
    )
    src = tmp_path / "upload"
    src.mkdir()
    for i in range(10):
        (src / f"{i}.jpg").write_bytes(jpeg(32, 24, i))
    ingestion_id = plan_in_a_killed_process(settings, src)
    db = Database.from_url(db_url)
    queue = RQJobQueue.from_settings(settings)
    stop = threading.Event()
    threads = worker_main.start_supervision(settings, db, stop)
    try:
        deadline = time.monotonic() + 60
        expected = [(ingestion_id, c) for c in (0, 1, 2)]
        while queued_chunks(queue) != expected:
            assert time.monotonic() < deadline, "the ingestion was never planned and queued"
            time.sleep(0.1)
        with db.read() as session:
            row = session.get_one(Ingestion, ingestion_id)
            assert (row.status, row.total_items) == (IngestionStatus.RUNNING, 10)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        queue.queue.delete(delete_jobs=True)
        db.dispose()


def queued_chunks(queue: RQJobQueue) -> list[tuple[int, int]]:
    parsed = [parse_chunk_job_id(job_id) for job_id in queue.queue.get_job_ids()]
    return sorted(p for p in parsed if p is not None)
