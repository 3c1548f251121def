from __future__ import annotations

import sqlalchemy as sa

from shared.db import migrations
from shared.db.database import Database
from shared.db.models import Base, EmbeddingSpace, Image


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    expected = {t.name for t in Base.metadata.sorted_tables}
    assert expected <= _tables(db_url)
    migrations.downgrade(db_url, "base")
    assert _tables(db_url) <= {"alembic_version"}
    migrations.upgrade(db_url)
    assert expected <= _tables(db_url)


def test_models_match_migrations(db_url: str) -> None:
    """Autogenerate against the migrated schema finds nothing to do."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_sqlite_and_postgres_enforce_unique_hash(database: Database) -> None:
    from shared.db.upserts import insert_ignore

    row = {
        "sha256": "a" * 64,
        "width": 10,
        "height": 10,
        "format": "PNG",
        "bytes": 1,
        "source": "x",
    }
    with database.begin() as s:
        insert_ignore(s, Image.__table__, [row, row])  # type: ignore[arg-type]
    with database.begin() as s:
        insert_ignore(s, Image.__table__, [row])  # type: ignore[arg-type]
    with database.read() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Image)) == 1
        assert s.scalar(sa.select(sa.func.count()).select_from(EmbeddingSpace)) == 0
