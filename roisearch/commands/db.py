"""``roisearch db``: schema migrations."""

from __future__ import annotations

import typer

from roisearch.context import console, settings_or_exit
from shared.db import migrations

app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)


@app.command()
def upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION (default: head)."""
    settings = settings_or_exit()
    migrations.upgrade(settings.resolved_database_url, revision)
    console.print(f"database at revision {revision}")


@app.command()
def downgrade(revision: str = typer.Argument(..., help="target revision, e.g. base")) -> None:
    """Revert migrations down to REVISION."""
    settings = settings_or_exit()
    migrations.downgrade(settings.resolved_database_url, revision)
    console.print(f"database at revision {revision}")
