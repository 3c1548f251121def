"""Every command's help renders cleanly, and the top-level help documents the exit statuses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer
from typer.testing import CliRunner

from roisearch.cli import app
from roisearch.exit_codes import FAILURE, OK, USAGE


def command_paths(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command's argv prefix (typer's groups have ``commands``)."""
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from command_paths(sub, (*path, name))


def test_help_texts_have_no_literal_double_back_quotes() -> None:
    """Docstrings used as help wrote ``--out``; help is read in a terminal, not as reST."""
    paths = list(command_paths(typer.main.get_command(app)))
    assert ("report", "clusters") in paths and ("ingestions", "show") in paths
    for path in paths:
        result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "120"})
        assert result.exit_code == 0, (path, result.output)
        assert "``" not in result.output, (path, result.output)


def test_top_level_help_lists_the_exit_statuses() -> None:
    assert (OK, FAILURE, USAGE) == (0, 1, 2)
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    text = " ".join(result.output.split())
    assert "Exit status: 0 ok; 1 failure" in text and "2 bad usage or configuration" in text
    assert "docs/cli.md" in text
