"""roisearch/output.py: plain rows when piped, rich tables on a terminal, strict JSON."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from roisearch.output import (
    Column,
    Listing,
    fits,
    listing_json,
    plain_lines,
    print_json,
    rich_table,
)


def sample() -> Listing:
    listing = Listing("things [in] a/b", (Column("id", justify="right"), Column("name", wrap=True)))
    listing.add(id=7, name="[red]not markup[/red] " + "x" * 150)
    listing.add(id=12, name=None)
    return listing


def test_plain_lines_are_aligned_and_never_wrapped() -> None:
    lines = plain_lines(sample())
    assert lines[0] == "things [in] a/b"
    assert lines[1].startswith("id  name")
    assert lines[2].startswith(" 7  [red]not markup[/red] xxx") and len(lines[2]) > 150
    assert lines[3] == "12  -"


def test_rich_table_shows_values_literally() -> None:
    out = io.StringIO()
    Console(file=out, width=60, force_terminal=True, color_system=None).print(rich_table(sample()))
    text = out.getvalue()
    assert "[red]not" in text  # a value is shown, not interpreted as markup
    assert "things [in] a/b" in text


def test_json_rows_and_strict_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    assert listing_json(sample())[1] == {"id": 12, "name": None}
    print_json({"score": float("nan"), "rows": [{"x": float("inf")}, {"x": 1.5}]})
    assert json.loads(capsys.readouterr().out) == {
        "score": None,
        "rows": [{"x": None}, {"x": 1.5}],
    }


def test_a_table_that_cannot_fit_is_not_squeezed() -> None:
    """rich squeezed columns it could not fit to nothing (the crop URL got 2 characters)."""
    wide = Listing("wide", (Column("id"), Column("path"), Column("note", wrap=True)))
    wide.add(id=1, path="p" * 60, note="n" * 40)
    assert not fits(wide, 80)  # the fixed columns alone need 70 + the note's 16
    assert fits(wide, 100)
    assert fits(sample(), 40)  # the long name wraps
