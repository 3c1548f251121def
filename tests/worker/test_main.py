"""worker.main's RQ worker class, against the real Redis."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue

from shared.db import migrations
from shared.settings import load_settings
from worker.main import ModelWorker, run_worker


def test_the_command_channel_stops_promptly(redis_url: str) -> None:
    """Stopping the pubsub thread (part of every shutdown) waits for its poll in progress
    (redis-py 8); with RQ's 60 s poll, a SIGTERMed worker took a minute to exit."""
    connection = Redis.from_url(redis_url)
    worker = ModelWorker(
        [Queue(f"test-{uuid.uuid4().hex}", connection=connection)],
        connection=connection,
        name=f"test-{uuid.uuid4().hex[:8]}",
    )
    worker.subscribe()
    try:
        # Once the reply to this is read, the thread's next poll waits for a subscription:
        # the state a worker's thread is in at most shutdowns.
        assert worker.pubsub is not None
        worker.pubsub.unsubscribe()
        time.sleep(0.5)
        stopper = threading.Thread(target=worker.unsubscribe, daemon=True)
        began = time.monotonic()
        stopper.start()
        stopper.join(10)
        assert not stopper.is_alive(), "the pubsub thread outlived its stop by 10 s"
        assert time.monotonic() - began < 5
    finally:
        connection.close()


def test_a_worker_refuses_a_postgresql_schema_behind_head(
    tmp_path: Path, empty_pg_url: str, redis_url: str
) -> None:
    """Never migrated implicitly: the worker stops at once, naming the command to run."""
    migrations.upgrade(empty_pg_url, "0002")
    settings = load_settings(data_dir=tmp_path, database_url=empty_pg_url, redis_url=redis_url)
    with pytest.raises(SystemExit, match=r"at revision 0002.*run `roisearch db upgrade`"):
        run_worker(settings, burst=True)
