"""The CLI's one map from errors to what the user sees: one line on stderr and an exit status.

Every coded error (:mod:`shared.errors`), raised in process or rebuilt from an API error body,
ends a command with exit status 1 (``exit_codes.FAILURE``) and ``error: <message> (<code>)``;
status 2 stays what it is for click: a usage error (a bad option value). Unexpected
exceptions keep their traceback (they are bugs), except storage failures
(:mod:`roisearch.storage_errors`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.text import Text

from roisearch.context import err_console
from roisearch.exit_codes import FAILURE
from shared.errors import CodedError


def report(exc: CodedError) -> int:
    """Print ``exc`` as one line (no markup is interpreted: messages may quote ``[...]``) and
    return the exit status it ends the command with."""
    err_console.print(Text(f"error: {exc.message} ({exc.code})", style="red"), soft_wrap=True)
    return FAILURE


def fail(exc: CodedError) -> NoReturn:
    """End a command (inside typer) on ``exc``."""
    raise typer.Exit(report(exc))


@contextmanager
def reported() -> Iterator[None]:
    """Run a command's body; a coded error ends it through :func:`fail`."""
    try:
        yield
    except CodedError as exc:
        fail(exc)
