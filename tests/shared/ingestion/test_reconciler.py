"""The reconciler re-enqueues pending chunks the queue does not know (real Redis), and the
re-enqueued jobs complete the ingestion without duplicates; ingestions left planning by a
planner that was killed are planned again and queued, live planners are left alone."""

from __future__ import annotations

import shutil
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rq import Queue
from sqlalchemy import select, update

from shared.db.database import Database
from shared.db.models import Ingestion, IngestionItem, IngestionStatus, ItemStatus
from shared.ingestion.pipeline import process_chunk
from shared.ingestion.planning import PlanSummary, create_ingestion
from shared.ingestion.reconciler import finish_settled, running_ingestions
from shared.ingestion.supervisor import IngestionSupervisor
from shared.queueing import CHUNK_JOB, InProcessJobQueue, RQJobQueue, parse_chunk_job_id
from shared.settings import Settings
from shared.yolov7.detector import Detector
from tests.shared.imaging.corpus import jpeg
from tests.shared.ingestion.scenarios import (
    item_outcomes,
    live_owner,
    plan_in_a_killed_process,
    totals,
)

pytestmark = pytest.mark.redis


@pytest.fixture
def rq_queue(redis_url: str) -> Iterator[RQJobQueue]:
    queue = RQJobQueue(redis_url, f"test-reconcile-{uuid.uuid4().hex[:8]}", job_timeout_s=60)
    yield queue
    queue.queue.delete(delete_jobs=True)


@pytest.fixture
def rq_supervisor(
    db: Database, ingest_settings: Settings, rq_queue: RQJobQueue
) -> IngestionSupervisor:
    return IngestionSupervisor(db, ingest_settings.ingestion_config(), rq_queue)


def plan_folder(tmp_path: Path, db: Database, settings: Settings, images: int) -> PlanSummary:
    src = tmp_path / "src"
    src.mkdir(parents=True)
    for i in range(images):
        (src / f"{i:03d}.jpg").write_bytes(jpeg(48, 32, i))
    return IngestionSupervisor(db, settings.ingestion_config()).start(src)


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
    tmp_path: Path,
    ingest_settings: Settings,
    db: Database,
    rq_queue: RQJobQueue,
    rq_supervisor: IngestionSupervisor,
) -> None:
    plan = plan_folder(tmp_path, db, ingest_settings, 20)  # chunks of 8: 0, 1, 2
    assert plan.pending_chunks == [0, 1, 2]
    assert running_ingestions(db) == [plan.ingestion_id]
    # Planned but never enqueued (as if Redis lost everything): recent items wait for the grace
    # period, so a chunk a worker has only just claimed is left alone.
    assert rq_supervisor.reconcile(grace_s=3600) == 0
    age_items(db, plan.ingestion_id, 120)
    assert rq_supervisor.reconcile(grace_s=20) == 3
    expected = [(plan.ingestion_id, c) for c in (0, 1, 2)]
    assert queued_chunks(rq_queue.queue) == expected
    assert rq_queue.known_chunks() == set(expected)
    assert all(job.func_name == CHUNK_JOB for job in rq_queue.queue.jobs)
    # Known to the queue now: nothing more is enqueued.
    assert rq_supervisor.reconcile(grace_s=20) == 0
    assert rq_queue.depth() == 3


def test_only_missing_chunks_of_running_ingestions(
    tmp_path: Path,
    ingest_settings: Settings,
    db: Database,
    rq_queue: RQJobQueue,
    rq_supervisor: IngestionSupervisor,
) -> None:
    plan = plan_folder(tmp_path, db, ingest_settings, 20)
    rq_queue.enqueue_chunks(plan.ingestion_id, plan.pending_chunks)
    age_items(db, plan.ingestion_id, 120)
    # One job vanishes (e.g. removed by an operator, or dropped by Redis).
    lost = next(
        j for j in rq_queue.queue.jobs if parse_chunk_job_id(j.id) == (plan.ingestion_id, 1)
    )
    rq_queue.queue.remove(lost)
    lost.delete()
    assert rq_supervisor.reconcile(grace_s=20) == 1
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
    assert rq_supervisor.reconcile(grace_s=20) == 0


def test_redis_loss_then_reconcile_completes_without_duplicates(
    tmp_path: Path,
    ingest_settings: Settings,
    db: Database,
    rq_queue: RQJobQueue,
    detector: Detector,
    rq_supervisor: IngestionSupervisor,
) -> None:
    plan = plan_folder(tmp_path, db, ingest_settings, 20)
    rq_queue.enqueue_chunks(plan.ingestion_id, plan.pending_chunks)
    # The first job runs (as a worker would), then Redis forgets everything.
    first = rq_queue.queue.jobs[0]
    process_chunk(db, ingest_settings.ingestion_config(), detector, *first.args)
    rq_queue.connection.delete(rq_queue.queue.key)
    for job in rq_queue.queue.jobs:
        job.delete()
    assert rq_queue.known_chunks() == set()
    age_items(db, plan.ingestion_id, 120)
    assert rq_supervisor.reconcile(grace_s=20) == 2  # chunk 0 is done: not re-enqueued
    for job in rq_queue.queue.jobs:
        process_chunk(db, ingest_settings.ingestion_config(), detector, *job.args)
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

    queue = InProcessJobQueue({CHUNK_JOB: run_chunk})
    assert queue.enqueue_chunks(plan.ingestion_id, [0]) == 1
    assert queue.enqueue_chunks(plan.ingestion_id, [0]) == 0  # already pending
    age_items(db, plan.ingestion_id, 120)
    assert (
        IngestionSupervisor(db, ingest_settings.ingestion_config(), queue).reconcile(grace_s=20)
        == 2
    )  # chunks 1 and 2
    release.set()
    queue.join()
    queue.close()
    assert sorted(ran) == [(plan.ingestion_id, c) for c in (0, 1, 2)]
    assert queue.known_chunks() == set()


# --- ingestions left planning by a planner that died -----------------------------------------


def ingestion_state(db: Database, ingestion_id: int) -> tuple[str, str | None, int]:
    with db.read() as session:
        row = session.get_one(Ingestion, ingestion_id)
        return row.status, row.error_code, row.total_items


def test_an_ingestion_whose_planner_was_killed_is_planned_again_and_completed(
    tmp_path: Path,
    ingest_settings: Settings,
    db: Database,
    rq_queue: RQJobQueue,
    detector: Detector,
    rq_supervisor: IngestionSupervisor,
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(20):
        (src / f"{i:03d}.jpg").write_bytes(jpeg(48, 32, i))
    ingestion_id = plan_in_a_killed_process(ingest_settings, src)
    assert ingestion_state(db, ingestion_id) == ("planning", None, 0)
    assert len(item_outcomes(db, ingestion_id)) == 5
    # Not a running ingestion: the chunk reconciler alone would never see it.
    age_items(db, ingestion_id, 120)
    assert rq_supervisor.reconcile(grace_s=20) == 0

    # Its planner is gone (known at once on this host): planned again, idempotently, and queued.
    assert rq_supervisor.replan_orphans() == [ingestion_id]
    assert ingestion_state(db, ingestion_id) == ("running", None, 20)
    assert queued_chunks(rq_queue.queue) == [(ingestion_id, c) for c in (0, 1, 2)]
    assert rq_supervisor.replan_orphans() == []  # nothing left to take over
    for job in rq_queue.queue.jobs:
        process_chunk(db, ingest_settings.ingestion_config(), detector, *job.args)
    assert set(item_outcomes(db, ingestion_id).values()) == {("done", None)}
    assert len(item_outcomes(db, ingestion_id)) == 20
    assert ingestion_state(db, ingestion_id)[0] == "done"
    assert totals(db).images == 20


def test_a_planner_that_is_alive_is_left_alone(
    tmp_path: Path,
    ingest_settings: Settings,
    db: Database,
    rq_queue: RQJobQueue,
    rq_supervisor: IngestionSupervisor,
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.jpg").write_bytes(jpeg(48, 32, 1))
    with db.begin() as session:
        ingestion_id = create_ingestion(session, src).id
    with live_owner() as owner:
        # Alive on this host: left alone, even with a heartbeat an hour old.
        with db.begin() as session:
            session.execute(
                update(Ingestion)
                .where(Ingestion.id == ingestion_id)
                .values(lease_owner=owner, updated_at=datetime.now(UTC) - timedelta(hours=1))
            )
        assert rq_supervisor.replan_orphans() == []
    # On another host: left alone while it beats, taken over once it stops.
    for age_s, expected in ((5, []), (600, [ingestion_id])):
        with db.begin() as session:
            session.execute(
                update(Ingestion)
                .where(Ingestion.id == ingestion_id)
                .values(
                    lease_owner="another-host/boot:1234:5678",
                    updated_at=datetime.now(UTC) - timedelta(seconds=age_s),
                )
            )
        assert (
            IngestionSupervisor(
                db, ingest_settings.ingestion_config(), rq_queue, stale_s=60
            ).replan_orphans()
            == expected
        )
    assert ingestion_state(db, ingestion_id) == ("running", None, 1)


def test_a_killed_planner_whose_source_is_gone_fails_with_a_reason(
    tmp_path: Path,
    ingest_settings: Settings,
    db: Database,
    rq_queue: RQJobQueue,
    rq_supervisor: IngestionSupervisor,
) -> None:
    src = tmp_path / "upload"
    src.mkdir()
    for i in range(8):
        (src / f"{i}.jpg").write_bytes(jpeg(48, 32, i))
    ingestion_id = plan_in_a_killed_process(ingest_settings, src)
    shutil.rmtree(src)  # e.g. an upload directory cleaned up meanwhile
    assert rq_supervisor.replan_orphans() == [ingestion_id]
    assert ingestion_state(db, ingestion_id) == ("failed", "planning_interrupted", 5)
    with db.read() as session:
        items = session.execute(
            select(IngestionItem.member, IngestionItem.status, IngestionItem.error_message).where(
                IngestionItem.ingestion_id == ingestion_id
            )
        ).all()
    # Nothing left pending, and every item says why, naming itself.
    assert len(items) == 5
    assert all(
        status == "failed" and message is not None and message.startswith(member)
        for member, status, message in items
    )
    assert rq_queue.depth() == 0


def test_a_running_ingestion_with_nothing_pending_is_marked_done(
    tmp_path: Path,
    ingest_settings: Settings,
    db: Database,
    rq_queue: RQJobQueue,
    rq_supervisor: IngestionSupervisor,
) -> None:
    """The state two racing last chunks used to leave on PostgreSQL (every item done, the
    ingestion still running, no job left to finish it): the reconciler's pass finishes it."""
    stuck = plan_folder(tmp_path / "a", db, ingest_settings, 5)
    busy = plan_folder(tmp_path / "b", db, ingest_settings, 5)
    with db.begin() as session:
        session.execute(
            update(IngestionItem)
            .where(IngestionItem.ingestion_id == stuck.ingestion_id)
            .values(status=ItemStatus.DONE)
        )
    assert finish_settled(db) == [stuck.ingestion_id]
    assert finish_settled(db) == []  # done already: nothing to do, nothing logged
    with db.read() as session:
        statuses = dict(session.execute(select(Ingestion.id, Ingestion.status)).all())
    assert statuses[stuck.ingestion_id] == IngestionStatus.DONE
    assert statuses[busy.ingestion_id] == IngestionStatus.RUNNING  # it has pending items
    # and the reconciler runs that pass each time
    with db.begin() as session:
        session.execute(
            update(Ingestion)
            .where(Ingestion.id == stuck.ingestion_id)
            .values(status=IngestionStatus.RUNNING)
        )
    rq_supervisor.reconcile(grace_s=3600)
    assert ingestion_state(db, stuck.ingestion_id)[0] == IngestionStatus.DONE
