"""Several writer processes on one SQLite file: BEGIN IMMEDIATE keeps them from failing;
reads are snapshots on both backends."""

from __future__ import annotations

import multiprocessing as mp

import pytest
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


def _count(connection: sa.Connection | sa.orm.Session) -> int:
    return connection.scalar(sa.select(sa.func.count()).select_from(Ingestion)) or 0


def test_a_read_sees_one_state_of_the_database(database: Database) -> None:
    """A commit made between two statements of a read is seen by neither (PostgreSQL's
    default READ COMMITTED would show it to the second: a progress page read `done` with
    the item counts of a moment before)."""
    with database.begin() as session:
        session.add(Ingestion(source="first", source_kind="folder"))
    with database.read() as reader, database.read_connection() as bare:
        assert _count(reader) == 1 and _count(bare) == 1
        with database.begin() as writer:
            writer.add(Ingestion(source="second", source_kind="folder"))
        assert _count(reader) == 1 and _count(bare) == 1
    with database.read() as later:
        assert _count(later) == 2


def test_a_postgresql_read_cannot_write(pg_url: str) -> None:
    # SQLite's read transaction could be upgraded to a write; PostgreSQL's is READ ONLY.
    db = Database.from_url(pg_url)
    try:
        with pytest.raises(sa.exc.DBAPIError, match="read-only"), db.read() as reader:
            reader.add(Ingestion(source="sneaked in", source_kind="folder"))
            reader.flush()
    finally:
        db.dispose()
