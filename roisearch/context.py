"""Settings construction for CLI commands: one validated Settings per invocation."""

from __future__ import annotations

import sys

from rich.console import Console

from shared.settings import Settings, SettingsError, load_settings

# Piped or redirected output is never wrapped at a width (a line stays one line for grep);
# on a terminal rich wraps text to the window.
console = Console(soft_wrap=not sys.stdout.isatty())
err_console = Console(stderr=True, soft_wrap=not sys.stderr.isatty())


def settings_or_exit(**overrides: object) -> Settings:
    """Load settings; on a bad value print which variable is wrong and exit with status 2."""
    clean = {key: value for key, value in overrides.items() if value is not None}
    try:
        return load_settings(**clean)
    except SettingsError as exc:
        err_console.print(f"[red]{exc}[/red]")
        sys.exit(2)
