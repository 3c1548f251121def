"""One way for every CLI command to present what it lists.

Three renderings of the same :class:`Listing`:

- stdout is a terminal: a rich table (long text columns wrap, short ones never do);
- stdout is not a terminal (a pipe, a file): plain aligned columns, one row per line, never
  wrapped, so that ``roisearch layers | grep 99`` gives whole rows;
- ``--json``: one JSON document on stdout whose field names are the columns' ``key`` (stable,
  listed per command in docs/cli.md); messages and progress bars go to stderr meanwhile.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import typer
from rich.markup import escape
from rich.table import Table

from roisearch.context import console

JSON_HELP = "Print one JSON document (field names in docs/cli.md) instead of a table."


def json_option() -> Any:
    """The ``--json`` flag every listing command takes."""
    return typer.Option(False, "--json", help=JSON_HELP)


def _plain_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, list | tuple):
        return ",".join(_plain_value(v) for v in value)
    return str(value)


@dataclass(frozen=True)
class Column:
    """One column: ``key`` is its JSON field name, ``header`` what a table shows."""

    key: str
    header: str | None = None
    justify: Literal["left", "right"] = "left"
    # Long free text (paths, reasons) may wrap in a terminal; everything else keeps its width.
    wrap: bool = False
    text: Callable[[Any], str] = _plain_value

    @property
    def title(self) -> str:
        return self.header if self.header is not None else self.key


@dataclass
class Listing:
    """Rows of JSON-able values keyed by column key, with a title (and an optional caption)."""

    title: str
    columns: Sequence[Column]
    rows: list[dict[str, Any]] = field(default_factory=list)
    caption: str | None = None

    def add(self, **values: Any) -> None:
        self.rows.append(values)

    def cells(self) -> list[list[str]]:
        return [[col.text(row.get(col.key)) for col in self.columns] for row in self.rows]


def rich_table(listing: Listing) -> Table:
    table = Table(title=escape(listing.title), caption=listing.caption and escape(listing.caption))
    for col in listing.columns:
        if col.wrap:  # takes what the others leave, never less than a readable width
            table.add_column(
                col.title, justify=col.justify, overflow="fold", min_width=WRAP_MIN_WIDTH
            )
        else:
            table.add_column(col.title, justify=col.justify, no_wrap=True)
    for cells in listing.cells():
        table.add_row(*(escape(cell) for cell in cells))
    return table


def plain_lines(listing: Listing) -> list[str]:
    """The listing as aligned text: a title line, a header line, one line per row."""
    header = [col.title for col in listing.columns]
    rows = listing.cells()
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(width) if col.justify == "right" else cell.ljust(width)
            for col, cell, width in zip(listing.columns, cells, widths, strict=True)
        ]
        # a newline inside a value would split its row: keep one row per line
        return "  ".join(parts).rstrip().replace("\n", " ")

    lines = [listing.title, line(header), *(line(r) for r in rows)]
    if listing.caption:
        lines.append(listing.caption)
    return lines


WRAP_MIN_WIDTH = 16


def fits(listing: Listing, width: int) -> bool:
    """Whether a table fits ``width`` with every fixed column whole and every wrapping column
    at least WRAP_MIN_WIDTH wide (rich squeezes columns to nothing when it does not)."""
    rows = [[col.title for col in listing.columns], *listing.cells()]
    needed = 1  # the left border; each column adds its padding and right border
    for i, col in enumerate(listing.columns):
        natural = max(len(line) for row in rows for line in row[i].splitlines() or [""])
        needed += 3 + (min(natural, WRAP_MIN_WIDTH) if col.wrap else natural)
    return needed <= width


def print_listing(listing: Listing) -> None:
    """A rich table on a terminal wide enough for it; plain unwrapped lines otherwise."""
    if console.is_terminal and fits(listing, console.width):
        console.print(rich_table(listing))
    else:
        write_lines(plain_lines(listing))


def write_lines(lines: Sequence[str]) -> None:
    """Text to stdout as is: no markup, no wrapping at the terminal's width."""
    out = sys.stdout
    for text in lines:
        out.write(text + "\n")
    out.flush()


def listing_json(listing: Listing) -> list[dict[str, Any]]:
    """The rows with exactly the columns' keys, in column order."""
    return [{col.key: row.get(col.key) for col in listing.columns} for row in listing.rows]


def _strict(value: Any) -> Any:
    """NaN and infinities (figures that cannot be computed) → null: strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {key: _strict(v) for key, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(v) for v in value]
    return value


def print_json(document: Mapping[str, Any]) -> None:
    """One strict JSON document on stdout (datetimes and paths as strings)."""
    text = json.dumps(_strict(document), indent=2, default=str, ensure_ascii=False)
    write_lines([text])


def message(text: str) -> None:
    """A line for people on stdout, printed as is (paths may hold ``[``): wrapped on a
    terminal, never in a pipe."""
    console.print(text, markup=False, highlight=False, soft_wrap=not console.is_terminal)
