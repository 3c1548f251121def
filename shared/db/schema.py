"""The schema at head at every entry point: one place that decides, for every process.

- **SQLite** (the embedded default, one file in the data directory): every entry point (the
  API, a worker, each CLI command) brings the schema to head itself, so that any command works
  on a fresh data directory. Several processes may start at once on the same file (a server
  and a worker, two ingests): the upgrade runs under an exclusive file lock (see
  :mod:`shared.db.migrations`), so the later ones wait and then find the schema at head.
- **PostgreSQL** (shared by many hosts, upgraded on purpose): never migrated implicitly. A
  process checks the revision; when it is not head, the CLI and workers stop with a message
  naming ``roisearch db upgrade`` (:class:`SchemaNotReadyError`), and the API stays up but not
  ready (``/readyz``) and answers data routes 503 ``schema_not_ready`` until someone runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from shared.db import migrations
from shared.db.database import Database

UPGRADE_COMMAND = "roisearch db upgrade"


@cache
def head_revision() -> str:
    """The newest revision of the migrations shipped with this code."""
    head = ScriptDirectory.from_config(migrations.alembic_config("sqlite://")).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise RuntimeError("no migrations found")
    return head


@dataclass(frozen=True)
class SchemaState:
    """Where a database's schema is, compared with this code's head revision."""

    current: str | None  # None: an empty database (never migrated)
    head: str

    @property
    def at_head(self) -> bool:
        return self.current == self.head

    @property
    def message(self) -> str:
        if self.at_head:
            return f"schema at head ({self.head})"
        where = f"at revision {self.current}" if self.current else "empty (no schema)"
        return (
            f"the database schema is {where}, this version needs {self.head}: "
            f"run `{UPGRADE_COMMAND}`"
        )


class SchemaNotReadyError(RuntimeError):
    """The schema is not at head and this process may not migrate it (PostgreSQL)."""

    def __init__(self, state: SchemaState) -> None:
        super().__init__(state.message)
        self.state = state


def schema_state(db: Database) -> SchemaState:
    """Read the database's revision (one small query, in a read transaction)."""
    with db.read_connection() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    return SchemaState(current=current, head=head_revision())


def migrates_itself(url: str) -> bool:
    """Whether processes bring this database to head themselves (SQLite only)."""
    return make_url(url).get_backend_name() == "sqlite"


def ensure_schema(db: Database, url: str) -> SchemaState:
    """SQLite: upgrade to head if needed. PostgreSQL: only read the state. Returns it."""
    state = schema_state(db)
    if state.at_head or not migrates_itself(url):
        return state
    migrations.upgrade(url)  # under the file lock: see shared.db.migrations
    return schema_state(db)


def open_database(url: str) -> Database:
    """Connect an entry point to its database with the schema at head.

    SQLite is upgraded (under the lock); PostgreSQL not at head raises :class:`SchemaNotReadyError`
    (its message names ``roisearch db upgrade``).
    """
    db = Database.from_url(url)
    try:
        state = ensure_schema(db, url)
        if not state.at_head:
            raise SchemaNotReadyError(state)
    except BaseException:
        db.dispose()
        raise
    return db
