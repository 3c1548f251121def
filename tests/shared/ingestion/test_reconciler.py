"""The reconciler re-enqueues pending chunks the queue does not know (real Redis), and the
re-enqueued jobs complete the ingestion without duplicates."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rq import Queue
from sqlalchemy import update

from shared.db.database import Database
from shared.db.models import Ingestion, IngestionItem, IngestionStatus
from shared.ingestion.pipeline import process_chunk
from shared.ingestion.planning import PlanSummary
from shared.ingestion.reconciler import reconcile, running_ingestions
from shared.ingestion.runner import enqueue_plan, start_ingestion
from shared.queueing import CHUNK_JOB, InProcessJobQueue, RQJobQueue, parse_chunk_job_id
from shared.settings import Settings
from shared.yolov7.detector import Detector
from tests.shared.imaging.corpus import jpeg
from tests.shared.ingestion.scenarios import item_outcomes, totals

pytestmark = pytest.mark.redis


@pytest.fixture
def rq_queue(redis_url: str) -> Iterator[RQJobQueue]:
    queue = RQJobQueue(redis_url, f"test-reconcile-{uuid.uuid4().hex[:8]}", job_timeout_s=60)
    yield queue
    queue.queue.delete(delete_jobs=True)


def plan_folder(tmp_path: Path, db: Database, settings: Settings, images: int) -> PlanSummary:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(images):
        (src / f"{i:03d}.jpg").write_bytes(jpeg(48, 32, i))
    return start_ingestion(db, settings, src)


def age_items(db: Database, ingestion_id: int, seconds: float) -> None:
    with db.begin() as session:
        session.execute(
            update(IngestionItem)
            .where(IngestionItem.ingestion_id == ingestion_id)
            .values(updated_at=datetime.now(UTC) - timedelta(seconds=seconds))
        )


def queued_chunks(queue: Queue) -> list[tuple[int, int]]:
    parsed = [parse_chunk_job_id(job_id) for job_id in queue.get_job_ids()]
    return sorted(p for p in parsed if p is not None)


def test_lost_jobs_are_reenqueued_once(
    tmp_path: Path, ingest_settings: Settings, db: Database, rq_queue: RQJobQueue
) -> None:
    plan = plan_folder(tmp_path, db, ingest_settings, 20)  # chunks of 8: 0, 1, 2
    assert plan.pending_chunks == [0, 1, 2]
    assert running_ingestions(db) == [plan.ingestion_id]
    # Planned but never enqueued (as if Redis lost everything): recent items wait for the grace
    # period, so a chunk a worker has only just claimed is left alone.
    assert reconcile(db, rq_queue, grace_s=3600) == 0
    age_items(db, plan.ingestion_id, 120)
    assert reconcile(db, rq_queue, grace_s=20) == 3
    expected = [(plan.ingestion_id, c) for c in (0, 1, 2)]
    assert queued_chunks(rq_queue.queue) == expected
    assert rq_queue.known_chunks() == set(expected)
    assert all(job.func_name == CHUNK_JOB for job in rq_queue.queue.jobs)
    # Known to the queue now: nothing more is enqueued.
    assert reconcile(db, rq_queue, grace_s=20) == 0
    assert rq_queue.depth() == 3


def test_only_missing_chunks_of_running_ingestions(
    tmp_path: Path, ingest_settings: Settings, db: Database, rq_queue: RQJobQueue
) -> None:
    plan = plan_folder(tmp_path, db, ingest_settings, 20)
    enqueue_plan(rq_queue, plan)
    age_items(db, plan.ingestion_id, 120)
    # One job vanishes (e.g. removed by an operator, or dropped by Redis).
    lost = next(
        j for j in rq_queue.queue.jobs if parse_chunk_job_id(j.id) == (plan.ingestion_id, 1)
    )
    rq_queue.queue.remove(lost)
    lost.delete()
    assert reconcile(db, rq_queue, grace_s=20) == 1
    assert queued_chunks(rq_queue.queue) == [(plan.ingestion_id, c) for c in (0, 1, 2)]
    # Re-enqueued ids carry a new generation, never the id of the lost job (stale fields).
    assert lost.id not in rq_queue.queue.get_job_ids()
    # A cancelled ingestion's chunks are never re-enqueued.
    rq_queue.queue.empty()
    with db.begin() as session:
        session.execute(
            update(Ingestion)
            .where(Ingestion.id == plan.ingestion_id)
            .values(status=IngestionStatus.CANCELLED)
        )
    assert reconcile(db, rq_queue, grace_s=20) == 0


def test_redis_loss_then_reconcile_completes_without_duplicates(
    tmp_path: Path,
    ingest_settings: Settings,
    db: Database,
    rq_queue: RQJobQueue,
    detector: Detector,
) -> None:
    plan = plan_folder(tmp_path, db, ingest_settings, 20)
    enqueue_plan(rq_queue, plan)
    # The first job runs (as a worker would), then Redis forgets everything.
    first = rq_queue.queue.jobs[0]
    process_chunk(db, ingest_settings, detector, *first.args)
    rq_queue.connection.delete(rq_queue.queue.key)
    for job in rq_queue.queue.jobs:
        job.delete()
    assert rq_queue.known_chunks() == set()
    age_items(db, plan.ingestion_id, 120)
    assert reconcile(db, rq_queue, grace_s=20) == 2  # chunk 0 is done: not re-enqueued
    for job in rq_queue.queue.jobs:
        process_chunk(db, ingest_settings, detector, *job.args)
    assert set(item_outcomes(db, plan.ingestion_id).values()) == {("done", None)}
    t = totals(db)
    assert t.images == 20 and t.objects == t.distinct_object_keys == t.object_count_sum
    assert running_ingestions(db) == []


def test_in_process_queue_knows_its_pending_chunks(
    tmp_path: Path, ingest_settings: Settings, db: Database
) -> None:
    plan = plan_folder(tmp_path, db, ingest_settings, 20)
    release = threading.Event()
    ran: list[tuple[int, int]] = []

    def run_chunk(ingestion_id: int, chunk: int) -> None:
        release.wait(10)
        ran.append((ingestion_id, chunk))

    queue = InProcessJobQueue(run_chunk)
    assert queue.enqueue_chunks(plan.ingestion_id, [0]) == 1
    assert queue.enqueue_chunks(plan.ingestion_id, [0]) == 0  # already pending
    age_items(db, plan.ingestion_id, 120)
    assert reconcile(db, queue, grace_s=20) == 2  # chunks 1 and 2
    release.set()
    queue.join()
    queue.close()
    assert sorted(ran) == [(plan.ingestion_id, c) for c in (0, 1, 2)]
    assert queue.known_chunks() == set()
