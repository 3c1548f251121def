"""The schema at head at every entry point: SQLite brings itself there (also when several
processes start at once on a fresh file); PostgreSQL is never migrated implicitly."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from shared.db import migrations
from shared.db.database import Database
from shared.db.schema import (
    UPGRADE_COMMAND,
    SchemaNotReadyError,
    head_revision,
    open_database,
    schema_state,
)
from tests.conftest import REPO_ROOT

PROCESSES = 6
# Each child imports first, then waits for the same instant, so that the upgrades overlap.
RACE = """
import sys, time
from shared.db import migrations
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
migrations.upgrade(sys.argv[1])
"""


def test_a_fresh_sqlite_file_is_brought_to_head(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh' / 'roisearch.db'}"
    db = open_database(url)
    try:
        state = schema_state(db)
        assert state.current == head_revision() and state.at_head
        with db.read() as session:  # the tables are there
            version = session.execute(text("SELECT version_num FROM alembic_version"))
            assert version.scalar_one() == head_revision()
    finally:
        db.dispose()


def test_concurrent_upgrades_of_a_fresh_sqlite_file_all_succeed(tmp_path: Path) -> None:
    """Without the lock, processes racing on a fresh file fail (table ... already exists)."""
    url = f"sqlite:///{tmp_path / 'roisearch.db'}"
    start = time.time() + 4.0  # time for every child to import alembic and SQLAlchemy
    children = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, url, repr(start)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    outputs = [child.communicate(timeout=120)[0] for child in children]
    assert [child.returncode for child in children] == [0] * PROCESSES, "\n".join(outputs)
    db = Database.from_url(url)
    try:
        assert schema_state(db).at_head
    finally:
        db.dispose()


def test_postgresql_behind_head_is_refused_and_left_alone(empty_pg_url: str) -> None:
    migrations.upgrade(empty_pg_url, "0002")
    with pytest.raises(SchemaNotReadyError) as refused:
        open_database(empty_pg_url)
    message = str(refused.value)
    assert UPGRADE_COMMAND in message and "0002" in message and head_revision() in message
    db = Database.from_url(empty_pg_url)
    try:
        assert schema_state(db).current == "0002"  # never migrated implicitly
        migrations.upgrade(empty_pg_url)
        open_database(empty_pg_url).dispose()  # at head: accepted
    finally:
        db.dispose()


def test_an_empty_postgresql_database_says_so(empty_pg_url: str) -> None:
    with pytest.raises(SchemaNotReadyError, match=r"empty \(no schema\).*roisearch db upgrade"):
        open_database(empty_pg_url)
