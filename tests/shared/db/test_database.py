"""Several writer processes on one SQLite file: BEGIN IMMEDIATE keeps them from failing."""

from __future__ import annotations

import multiprocessing as mp

import sqlalchemy as sa

from shared.db.database import Database
from shared.db.models import Ingestion

WRITERS = 3
TRANSACTIONS = 40


def _writer(url: str, worker: int) -> int:
    db = Database.from_url(url)
    failures = 0
    for n in range(TRANSACTIONS):
        try:
            # Read then write in one transaction: the pattern that fails at once under a
            # deferred BEGIN, whatever the busy timeout.
            with db.begin() as session:
                count = session.scalar(sa.select(sa.func.count()).select_from(Ingestion)) or 0
                session.add(Ingestion(source=f"w{worker}-{n}-{count}", source_kind="folder"))
        except sa.exc.OperationalError:
            failures += 1
    db.dispose()
    return failures


def test_concurrent_read_then_write_transactions_never_fail(sqlite_url: str) -> None:
    ctx = mp.get_context("spawn")
    with ctx.Pool(WRITERS) as pool:
        failures = pool.starmap(_writer, [(sqlite_url, w) for w in range(WRITERS)])
    assert failures == [0] * WRITERS
    db = Database.from_url(sqlite_url)
    with db.read() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Ingestion)) == (
            WRITERS * TRANSACTIONS
        )
    db.dispose()


def test_read_transaction_does_not_wait_for_a_writer(sqlite_url: str) -> None:
    db = Database.from_url(sqlite_url)
    with db.begin() as writer:
        writer.add(Ingestion(source="pending", source_kind="folder"))
        writer.flush()
        # A reader sees the last committed state while the write lock is held (WAL).
        with db.read() as reader:
            assert reader.scalar(sa.select(sa.func.count()).select_from(Ingestion)) == 0
    db.dispose()
