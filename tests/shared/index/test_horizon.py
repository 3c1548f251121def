"""PostgreSQL fences: a running transaction holds the settled horizon back (and the list of
pending fences stays bounded); once it ends, the horizon moves past what it could write."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from shared.db.database import Database
from shared.index.horizon import MAX_PENDING_FENCES, PgHorizon
from tests.conftest import _truncate_pg
from tests.factories import clustered, insert_objects, make_space

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_database(pg_url: str) -> Iterator[Database]:
    _truncate_pg(pg_url)
    db = Database.from_url(pg_url)
    yield db
    db.dispose()


def advance(db: Database, horizon: PgHorizon) -> int:
    with db.engine.connect() as conn:
        return horizon.advance(conn).objects


def test_fences_wait_for_running_transactions(pg_database: Database) -> None:
    db = pg_database
    space = make_space(db, 4)
    ids = insert_objects(db, space, clustered(3, 4))
    horizon = PgHorizon()
    advance(db, horizon)
    assert advance(db, horizon) == max(ids)  # nothing running: settles at the next call
    with db.engine.connect() as held:
        tx = held.begin()
        held.execute(text("SELECT 1"))  # a transaction is running (it could draw ids)
        more = insert_objects(db, space, clustered(2, 4))
        for _ in range(MAX_PENDING_FENCES + 10):
            assert advance(db, horizon) == max(ids)
        assert horizon.pending <= MAX_PENDING_FENCES
        tx.rollback()
    assert advance(db, horizon) >= max(more)


def test_read_only_connections_can_be_exempted(pg_database: Database) -> None:
    db = pg_database
    space = make_space(db, 4)
    ids = insert_objects(db, space, clustered(2, 4))
    horizon = PgHorizon()
    with db.engine.connect() as reader:
        reader.execute(text("SELECT 1"))
        with horizon.exempt(reader):
            advance(db, horizon)
            assert advance(db, horizon) == max(ids)
        reader.rollback()
