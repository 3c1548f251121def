"""Progress bars that count what the user counts (images, objects, scenes), with a rate and
an ETA, on stderr: stdout stays for results (tables, ``--json``) so that pipes get only those.
"""

from __future__ import annotations

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from roisearch.context import err_console


class RateColumn(ProgressColumn):
    """``12.3 items/s``: what this bar counted since it started over the time it took.

    A task may start part-done (a resumed ingestion: ``add_task(..., start_at=done)``); only
    what this run did counts. Over the whole run, not rich's few-sample estimate, so that a
    short run still shows its rate at the end.
    """

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        elapsed = task.finished_time if task.finished_time is not None else task.elapsed
        counted = task.completed - float(task.fields.get("start_at", 0))
        if elapsed and counted > 0:
            return Text(f"{counted / elapsed:.1f} {self.unit}/s", style="progress.data.speed")
        return Text(f"– {self.unit}/s", style="progress.data.speed")


def counting_bar(unit: str) -> Progress:
    """``description ━━━━━ 120/244 items 5.1 items/s 0:00:24``."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        RateColumn(unit),
        TimeRemainingColumn(),
        console=err_console,
    )
