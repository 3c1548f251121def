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
    """``12.3 items/s`` (rich's estimate over the last samples); ``–`` before the first."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        text = f"{speed:.1f} {self.unit}/s" if speed else f"– {self.unit}/s"
        return Text(text, style="progress.data.speed")


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
