"""Run the Alembic migrations in ``migrations/`` programmatically (CLI, tests, compose).

Several processes may start at once on a fresh SQLite data directory (a server and a worker,
two ingests), and each brings the schema to head (:mod:`shared.db.schema`). Alembic runs all
steps in one transaction, which our SQLite engine opens with ``BEGIN IMMEDIATE``, and reads the
revision inside it, so the later processes find head and do nothing. But they would wait for
that write lock at most ``busy_timeout`` (60 s) and then fail with ``database is locked``:
a long migration of a large collection takes longer. So upgrades and downgrades of a SQLite
file also hold an exclusive ``flock`` on a lock file beside it, which waits as long as the
migration takes. PostgreSQL serialises DDL itself and is never migrated implicitly.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("migrations")))
    # '%' would be read as interpolation by configparser.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for another backend or an in-memory database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


@contextmanager
def _migration_lock(url: str) -> Iterator[None]:
    path = sqlite_file(url)
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.with_name(path.name + ".migrate-lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
        yield


def upgrade(url: str, revision: str = "head") -> None:
    # Alembic reads the current revision inside the lock: a process that waited finds head
    # and does nothing.
    with _migration_lock(url):
        command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    with _migration_lock(url):
        command.downgrade(alembic_config(url), revision)
