"""A progress bar for an index rebuild (``roisearch index rebuild``), on stderr."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from roisearch.context import err_console

PHASES = {
    "load": "reading the database",
    "train": "training",
    "add": "adding to the index",
}


@contextmanager
def rebuild_bar(space_id: int) -> Iterator[Callable[[str, int, int], None]]:
    """Yields the ``progress(phase, done, total)`` callback ``IndexManager.rebuild`` takes;
    one bar per phase."""
    with Progress(
        TextColumn(f"space {space_id}: {{task.description}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
    ) as bars:
        tasks: dict[str, TaskID] = {}

        def report(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bars.add_task(PHASES.get(phase, phase), total=total)
            bars.update(tasks[phase], completed=done, total=total)

        yield report
