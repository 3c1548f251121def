"""What every check of the battery records, the one table it prints, and the JSON it writes."""

from __future__ import annotations

import json
import platform
import traceback
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


@dataclass
class Check:
    """One line of the table.

    ``ok``: True when the invariant/target holds, False when it does not, None for a figure
    that has no pass/fail target (a measurement reported for information).
    """

    section: str
    name: str
    figure: str
    target: str = ""
    ok: bool | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "info"}[self.ok]


@dataclass
class Report:
    quick: bool
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    checks: list[Check] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)

    def add(self, check: Check) -> Check:
        self.checks.append(check)
        return check

    def error(self, section: str, name: str, exc: BaseException) -> Check:
        """A scenario that could not run to the end is a failed check, never a silent gap."""
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return self.add(
            Check(
                section,
                name,
                f"did not complete: {text[:300]}",
                "runs to the end",
                False,
                {"traceback": traceback.format_exc()[-4000:]},
            )
        )

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.ok is False]

    def table(self) -> Table:
        table = Table(
            title=f"roisearch proof ({'quick' if self.quick else 'full'}) — {self.started_at}",
            show_lines=False,
        )
        table.add_column("section", style="bold")
        table.add_column("check")
        table.add_column("figure")
        table.add_column("target")
        table.add_column("verdict")
        previous = ""
        for check in self.checks:
            style = {True: "green", False: "bold red", None: "dim"}[check.ok]
            table.add_row(
                check.section if check.section != previous else "",
                check.name,
                check.figure,
                check.target,
                f"[{style}]{check.verdict}[/{style}]",
            )
            previous = check.section
        return table

    def print(self, console: Console) -> None:
        console.print(self.table())
        passed = sum(1 for c in self.checks if c.ok)
        console.print(
            f"{passed} passed, {len(self.failed)} failed, "
            f"{sum(1 for c in self.checks if c.ok is None)} informational; "
            "sections took "
            + ", ".join(f"{k} {v:.0f}s" for k, v in self.timings_s.items() if "/" not in k)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "quick": self.quick,
            "started_at": self.started_at,
            "finished_at": datetime.now(UTC).isoformat(),
            "environment": self.environment,
            "timings_s": self.timings_s,
            "passed": sum(1 for c in self.checks if c.ok),
            "failed": len(self.failed),
            "checks": [asdict(c) | {"verdict": c.verdict} for c in self.checks],
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2, default=str))


def environment() -> dict[str, Any]:
    import os

    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }
