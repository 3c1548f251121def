"""Ingestion leases: who drives an ingestion, when it may be taken over (a dead driver on this
host at once, an unknown one after its heartbeat goes stale, a live one never), heartbeats
and release, the in-process queue's leases — against real processes and both databases."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from shared.db.database import Database
from shared.db.models import Ingestion, IngestionItem, IngestionStatus, ItemStatus
from shared.ingestion import leases
from shared.ingestion.leases import (
    abandoned,
    claim,
    find_abandoned,
    lease,
    owner_alive,
    owner_id,
)
from shared.ingestion.planning import create_ingestion
from shared.ingestion.supervisor import IngestionSupervisor
from shared.queueing import CHUNK_JOB, InProcessJobQueue
from shared.settings import Settings
from tests.shared.imaging.corpus import jpeg
from tests.shared.ingestion.scenarios import dead_owner, live_owner

PLANNING = [IngestionStatus.PLANNING]


def new_ingestion(db: Database, tmp_path: Path) -> int:
    with db.begin() as session:
        return create_ingestion(session, tmp_path, kind="folder").id


def set_lease(db: Database, ingestion_id: int, owner: str | None, age_s: float = 0.0) -> None:
    with db.begin() as session:
        session.execute(
            update(Ingestion)
            .where(Ingestion.id == ingestion_id)
            .values(lease_owner=owner, updated_at=datetime.now(UTC) - timedelta(seconds=age_s))
        )


def lease_row(db: Database, ingestion_id: int) -> tuple[str | None, datetime]:
    with db.read() as session:
        row = session.get_one(Ingestion, ingestion_id)
        return row.lease_owner, row.updated_at


def test_owner_liveness_is_read_from_real_processes() -> None:
    assert owner_alive(owner_id()) is True
    with live_owner() as owner:
        assert owner_alive(owner) is True
        pid = int(owner.split(":")[-2])
        # The same pid with another start time: the pid was reused by a new process.
        assert owner_alive(owner.rsplit(":", 1)[0] + ":1") is False
        assert pid != os.getpid()
    assert owner_alive(owner) is False
    assert owner_alive(f"elsewhere/boot:{os.getpid()}:1") is None  # another host: cannot tell
    assert owner_alive("garbage") is None


def test_when_an_ingestion_may_be_taken_over() -> None:
    now = datetime.now(UTC)
    old, fresh = now - timedelta(seconds=120), now - timedelta(seconds=1)
    assert not abandoned(owner_id(), old, now, 60)  # ours
    assert abandoned(dead_owner(), fresh, now, 60)  # dead here: at once
    with live_owner() as owner:
        assert not abandoned(owner, old, now, 60)  # alive here: never, even without beats
    remote = "elsewhere/boot:4242:99"
    assert not abandoned(remote, fresh, now, 60) and abandoned(remote, old, now, 60)
    # Released while unfinished (the run ended with an error): nobody drives it.
    assert abandoned(None, fresh, now, 60)
    # SQLite gives naive UTC datetimes.
    assert abandoned(remote, old.replace(tzinfo=None), now.replace(tzinfo=None), 60)
    assert not abandoned(remote, fresh.replace(tzinfo=None), now.replace(tzinfo=None), 60)


def test_claim_takes_only_orphans(database: Database, tmp_path: Path) -> None:
    ingestion_id = new_ingestion(database, tmp_path)
    assert lease_row(database, ingestion_id)[0] == owner_id()  # created leased to us
    with live_owner() as owner:
        set_lease(database, ingestion_id, owner, age_s=3600)
        assert find_abandoned(database, PLANNING) == []
        assert not claim(database, ingestion_id, PLANNING)
        assert lease_row(database, ingestion_id)[0] == owner
    # The planner was killed: taken over at once, by one claimant.
    set_lease(database, ingestion_id, dead_owner())
    assert [o.id for o in find_abandoned(database, PLANNING)] == [ingestion_id]
    assert not claim(database, ingestion_id, [IngestionStatus.RUNNING])  # wrong state
    assert claim(database, ingestion_id, PLANNING)
    assert lease_row(database, ingestion_id)[0] == owner_id()
    assert find_abandoned(database, PLANNING) == []
    # A planner elsewhere: only once its heartbeat is stale.
    set_lease(database, ingestion_id, "elsewhere/boot:4242:99", age_s=5)
    assert not claim(database, ingestion_id, PLANNING, stale_s=60)
    set_lease(database, ingestion_id, "elsewhere/boot:4242:99", age_s=120)
    assert claim(database, ingestion_id, PLANNING, stale_s=60)


def test_lease_beats_while_held_and_is_released_by_the_outermost_holder(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(leases, "HEARTBEAT_S", 0.2)
    ingestion_id = new_ingestion(database, tmp_path)
    set_lease(database, ingestion_id, None, age_s=3600)
    with lease(database, ingestion_id):
        assert lease_row(database, ingestion_id)[0] == owner_id()
        with lease(database, ingestion_id):  # re-entrant: planning inside an embedded run
            pass
        assert lease_row(database, ingestion_id)[0] == owner_id()  # still ours
        set_lease(database, ingestion_id, owner_id(), age_s=3600)
        deadline = time.monotonic() + 30
        while heartbeat_age_s(database, ingestion_id) > 60:  # renewed by the thread
            assert time.monotonic() < deadline, "the heartbeat never renewed the lease"
            time.sleep(0.1)
    assert lease_row(database, ingestion_id)[0] is None


def heartbeat_age_s(db: Database, ingestion_id: int) -> float:
    with db.read() as session:
        now = session.scalar(select(func.now()))
        beat = session.get_one(Ingestion, ingestion_id).updated_at
    assert now is not None
    return (now.replace(tzinfo=None) - beat.replace(tzinfo=None)).total_seconds()


def test_the_in_process_queue_leases_what_it_runs_and_orphans_are_queued_again(
    ingest_settings: Settings, db: Database, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(20):
        (src / f"{i:03d}.jpg").write_bytes(jpeg(48, 32, i))
    running = threading.Event()
    release = threading.Event()

    def run_chunk(ingestion_id: int, chunk: int) -> None:
        running.set()
        release.wait(10)  # processes nothing: the items stay pending

    queue = InProcessJobQueue({CHUNK_JOB: run_chunk}, hold=partial(lease, db))
    supervisor = IngestionSupervisor(db, ingest_settings.ingestion_config(), queue)
    plan = supervisor.start(src)  # chunks of 8: 0, 1, 2
    try:
        assert queue.enqueue_chunks(plan.ingestion_id, plan.pending_chunks) == 3
        assert running.wait(10)
        # Leased while its chunks are queued or running: not an orphan, not queued again.
        assert lease_row(db, plan.ingestion_id)[0] == owner_id()
        assert supervisor.requeue_orphans() == []
        release.set()
        queue.join()
        # Released after the last chunk; items still pending: driverless, taken over at once.
        assert lease_row(db, plan.ingestion_id)[0] is None
        assert supervisor.requeue_orphans() == [plan.ingestion_id]
        queue.join()
        with db.begin() as session:
            session.execute(
                update(IngestionItem)
                .where(IngestionItem.ingestion_id == plan.ingestion_id)
                .values(status=ItemStatus.DONE)
            )
        # Nothing left to run (killed between its last chunk and the final status): done.
        assert supervisor.requeue_orphans() == [plan.ingestion_id]
        assert queue.depth() == 0
        with db.read() as session:
            assert session.get_one(Ingestion, plan.ingestion_id).status == IngestionStatus.DONE
    finally:
        release.set()
        queue.close()
