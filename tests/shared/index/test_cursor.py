"""Cursor advance: monotonic on PostgreSQL horizons, exact (may go down) on SQLite."""

from __future__ import annotations

from shared.index.cursor import Cursor


def test_advance_forgets_ids_at_or_below_the_horizon() -> None:
    c = Cursor(low=10, above={12, 15, 20}, tomb_low=3, tomb_above={4, 9})
    c.advance(15, 2, exact=False)
    assert (c.low, c.above, c.tomb_low, c.tomb_above) == (15, {20}, 3, {4, 9})
    c.advance(8, 1, exact=True)  # SQLite: the last rows were deleted, their ids come back
    assert (c.low, c.above, c.tomb_low, c.tomb_above) == (8, {20}, 1, {4, 9})
    assert Cursor.from_json(c.to_json()) == c
