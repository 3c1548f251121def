"""The point in the database an index covers, robust to ids committed out of order.

PostgreSQL hands out ids from a sequence when a row is inserted, not when its transaction
commits, so with several writers id 7 may become visible after id 9 has been indexed; "every
id above the highest one seen" would skip 7 forever. A cursor therefore keeps:

* ``low``: every object id ``<= low`` that will ever exist is committed and has been applied
  (indexed, or known deleted): no transaction that could still add such an id is running;
* ``above``: the ids ``> low`` already applied. Gaps above ``low`` stay open (they are re-read
  every catch-up) until a settled horizon (:mod:`shared.index.horizon`) passes them.

The same pair is kept for the tombstone table (deletions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Cursor:
    low: int = 0
    above: set[int] = field(default_factory=set)
    tomb_low: int = 0
    tomb_above: set[int] = field(default_factory=set)

    def advance(self, objects: int, tombstones: int, *, exact: bool) -> None:
        """Move the lows to a settled horizon and forget applied ids at or below them.

        ``exact`` (SQLite): the horizon is the highest id in the very snapshot that was just
        applied, so the lows move to it even downwards (SQLite reuses the id of a deleted
        last row; the next insert must be read again).
        """
        if exact:
            self.low, self.tomb_low = objects, tombstones
        else:
            self.low = max(self.low, objects)
            self.tomb_low = max(self.tomb_low, tombstones)
        self.above = {i for i in self.above if i > self.low}
        self.tomb_above = {i for i in self.tomb_above if i > self.tomb_low}

    def to_json(self) -> dict[str, Any]:
        return {
            "low": self.low,
            "above": sorted(self.above),
            "tomb_low": self.tomb_low,
            "tomb_above": sorted(self.tomb_above),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Cursor:
        return cls(
            low=int(data["low"]),
            above={int(i) for i in data["above"]},
            tomb_low=int(data["tomb_low"]),
            tomb_above={int(i) for i in data["tomb_above"]},
        )

    def copy(self) -> Cursor:
        return Cursor(self.low, set(self.above), self.tomb_low, set(self.tomb_above))
