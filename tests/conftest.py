"""Test fixtures shared by the whole suite.

Database tests run against both SQLite and the real PostgreSQL on 127.0.0.1:5432 (a fresh
database per test run, truncated between tests). Redis tests use the real server on
127.0.0.1:6379 with a unique key prefix/queue name per test. Nothing is mocked.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from shared.db import migrations
from shared.db.database import Database
from shared.db.models import Base
from shared.settings import Settings, load_settings

REPO_ROOT = Path(__file__).resolve().parents[1]
# YOLOv7 parity fixtures (random-weight checkpoint + the official implementation's outputs),
# part of the repository: see tests/fixtures/yolov7/README.md for where they come from.
YOLOV7_FIXTURES = REPO_ROOT / "tests" / "fixtures" / "yolov7"

PG_ADMIN_URL = os.environ.get(
    "ROISEARCH_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_TEST_URL = os.environ.get("ROISEARCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def yolov7_fixtures() -> Path:
    """The official-implementation reference data, shipped in tests/fixtures/yolov7."""
    assert (YOLOV7_FIXTURES / "yolov7-tiny-random.pt").is_file(), (
        f"YOLOv7 parity fixtures missing from {YOLOV7_FIXTURES}: the clone is incomplete"
    )
    return YOLOV7_FIXTURES


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, migrated to head, dropped afterwards."""
    name = f"roisearch_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    migrations.upgrade(url)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _truncate_pg(url: str) -> None:
    engine = sa.create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database of each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'roisearch.db'}"
        migrations.upgrade(url)
        return url
    url = request.getfixturevalue("pg_url")
    _truncate_pg(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'roisearch.db'}"
    migrations.upgrade(url)
    return url


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    db = Database.from_url(db_url)
    yield db
    db.dispose()


@pytest.fixture
def redis_url() -> str:
    return REDIS_TEST_URL


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """Settings for a test: own data directory, the parametrised database, embedded mode."""
    return load_settings(data_dir=tmp_path / "data", database_url=db_url)
