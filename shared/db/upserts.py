"""Dialect-aware ``INSERT ... ON CONFLICT`` so idempotent writes never check-then-insert."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignore(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` into ``table``; rows that hit a unique constraint are skipped."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(postgresql.insert(table).on_conflict_do_nothing(), rows)
    elif dialect == "sqlite":
        session.execute(sqlite.insert(table).on_conflict_do_nothing(), rows)
    else:  # pragma: no cover - settings validation allows only the two dialects above
        raise ValueError(f"unsupported database dialect {dialect!r}")
