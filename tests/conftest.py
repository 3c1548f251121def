"""Test fixtures shared by the whole suite.

Database tests run against both SQLite and a real PostgreSQL (a fresh database per test run,
truncated between tests). Redis tests use a real server with a unique key prefix/queue name
per test. Nothing is mocked. The servers are the ones on 127.0.0.1:5432 / 6379 (or
``ROISEARCH_TEST_PG_ADMIN_URL`` / ``ROISEARCH_TEST_REDIS_URL``); where one does not answer,
the session starts a private one, or skips the tests that need it saying what to install
(see tests/services.py).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from shared.db import migrations
from shared.db.database import Database
from shared.db.models import Base
from shared.settings import Settings, load_settings
from tests.services import Services, mark_and_skip

REPO_ROOT = Path(__file__).resolve().parents[1]
# YOLOv7 parity fixtures (random-weight checkpoint + the official implementation's outputs),
# part of the repository: see tests/fixtures/yolov7/README.md for where they come from.
YOLOV7_FIXTURES = REPO_ROOT / "tests" / "fixtures" / "yolov7"

SERVICES = Services.from_environment()


def pytest_configure(config: pytest.Config) -> None:
    SERVICES.start()


def pytest_unconfigure(config: pytest.Config) -> None:
    SERVICES.stop()


def pytest_sessionstart(session: pytest.Session) -> None:
    # Shown with -q too (a report header is not): which servers are private, what is missing.
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    for line in SERVICES.header():
        if reporter is not None:
            reporter.write_line(line)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mark_and_skip(items, SERVICES)


@pytest.fixture(scope="session")
def yolov7_fixtures() -> Path:
    """The official-implementation reference data, shipped in tests/fixtures/yolov7."""
    assert (YOLOV7_FIXTURES / "yolov7-tiny-random.pt").is_file(), (
        f"YOLOv7 parity fixtures missing from {YOLOV7_FIXTURES}: the clone is incomplete"
    )
    return YOLOV7_FIXTURES


@contextmanager
def new_pg_database() -> Iterator[str]:
    """A new, empty PostgreSQL database (no schema); dropped afterwards. Yields its URL."""
    name = f"roisearch_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(SERVICES.pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield SERVICES.pg_admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, migrated to head, dropped afterwards."""
    with new_pg_database() as url:
        migrations.upgrade(url)
        yield url


@pytest.fixture
def empty_pg_url() -> Iterator[str]:
    """A PostgreSQL database of its own for one test, with no schema at all."""
    with new_pg_database() as url:
        yield url


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
    return SERVICES.redis_url


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """Settings for a test: own data directory, the parametrised database, embedded mode."""
    return load_settings(data_dir=tmp_path / "data", database_url=db_url)
