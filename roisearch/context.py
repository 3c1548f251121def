"""Settings construction for CLI commands: one validated Settings per invocation."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from sqlalchemy.engine import make_url

from shared.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from shared.db.database import Database

# Piped or redirected output is never wrapped at a width (a line stays one line for grep);
# on a terminal rich wraps text to the window.
console = Console(soft_wrap=not sys.stdout.isatty())
err_console = Console(stderr=True, soft_wrap=not sys.stderr.isatty())


def storage_line(settings: Settings) -> str:
    """``data: <dir> · database: <url>`` (password hidden): which collection a command uses."""
    database = make_url(settings.resolved_database_url).render_as_string(hide_password=True)
    return f"data: {settings.data_dir.expanduser().absolute()} · database: {database}"


def settings_or_exit(*, announce: bool = True, **overrides: object) -> Settings:
    """Load settings; on a bad value print which variable is wrong and exit with status 2.

    ``announce`` prints :func:`storage_line` to stderr (stdout stays clean for ``--json`` and
    pipes), so that a command run from another folder, or with another environment, says
    which collection it reads and writes.
    """
    clean = {key: value for key, value in overrides.items() if value is not None}
    try:
        settings = load_settings(**clean)
    except SettingsError as exc:
        err_console.print(f"[red]{exc}[/red]")
        sys.exit(2)
    if announce:
        err_console.print(escape(storage_line(settings)), highlight=False, soft_wrap=True)
    return settings


def open_database(settings: Settings) -> Database:
    """The command's database with the schema at head (SQLite: upgraded here if needed).

    PostgreSQL is never migrated implicitly: not at head, print what to run and exit 1.
    """
    from shared.db.schema import SchemaNotReadyError
    from shared.db.schema import open_database as open_at_head

    try:
        return open_at_head(settings.resolved_database_url)
    except SchemaNotReadyError as exc:
        err_console.print(f"[red]error: {escape(str(exc))}[/red]", soft_wrap=True)
        sys.exit(1)
