"""Reading what changed in the database since a cursor: new objects and deletions.

Every read runs in one snapshot (``Database.read_connection``: PostgreSQL's read-only
REPEATABLE READ, SQLite's deferred read transaction) so that objects, tombstones and the
SQLite horizon agree with each other. The caller owns the transaction; nothing here writes.

Deletions come from ``object_tombstones`` (written in the same transaction that deletes the
rows, see ``api/deletion.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Connection, func, select

from shared.db.models import DetectedObject, EmbeddingSpace, ObjectTombstone
from shared.index.cursor import Cursor
from shared.index.horizon import Cut
from shared.index.rows import ObjectRows, decode_rows

# Ids per ``IN (...)`` list: well under SQLite's and PostgreSQL's parameter limits.
ID_BATCH = 5_000
STREAM_BATCH = 10_000

_ROW_SELECT = select(
    DetectedObject.id,
    DetectedObject.image_id,
    DetectedObject.x1,
    DetectedObject.y1,
    DetectedObject.x2,
    DetectedObject.y2,
    DetectedObject.class_id,
    DetectedObject.score,
    DetectedObject.vector,
)


@dataclass(frozen=True)
class SpaceInfo:
    id: int
    key: str
    dim: int
    created_at: str = ""

    @property
    def identity(self) -> str:
        """Key plus creation time: a re-created database reusing the space id and key (same
        model) gets a different identity, so an old snapshot is not mistaken for it."""
        return f"{self.key}@{self.created_at}"


def list_spaces(conn: Connection) -> list[SpaceInfo]:
    rows = conn.execute(
        select(
            EmbeddingSpace.id, EmbeddingSpace.key, EmbeddingSpace.dim, EmbeddingSpace.created_at
        ).order_by(EmbeddingSpace.id)
    )
    return [SpaceInfo(int(i), str(k), int(d), str(c)) for i, k, d, c in rows]


def _chunks(ids: list[int], size: int = ID_BATCH) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def read_rows(conn: Connection, object_ids: list[int], dim: int) -> ObjectRows:
    """Full rows of ``object_ids`` (any order; missing ids are simply absent)."""
    parts = [
        decode_rows(conn.execute(_ROW_SELECT.where(DetectedObject.id.in_(chunk))), dim)
        for chunk in _chunks(object_ids)
    ]
    return ObjectRows.concat(parts, dim)


def read_objects(
    conn: Connection, space: SpaceInfo, after: int, applied: set[int], page: int = STREAM_BATCH
) -> Iterator[tuple[ObjectRows, list[int]]]:
    """Objects of ``space`` with id ``> after`` not in ``applied``, ``page`` at a time (so a
    catch-up after a long pause holds one page, not the whole backlog).

    Yields the rows (bad vectors left out and recorded in ``rejected``) and every id read
    (including the rejected ones), ascending, page by page in id order.
    """
    if applied:
        present = conn.execute(
            select(DetectedObject.id).where(
                DetectedObject.space_id == space.id, DetectedObject.id > after
            )
        ).scalars()
        new_ids = sorted(int(i) for i in present if int(i) not in applied)
        for start in range(0, len(new_ids), page):
            chunk = new_ids[start : start + page]
            yield read_rows(conn, chunk, space.dim), chunk
        return
    for rows in stream_space(conn, space, page, after=after):
        yield rows, sorted([*(int(i) for i in rows.ids), *rows.rejected])


def read_tombstones(conn: Connection, space_id: int, cursor: Cursor) -> list[tuple[int, int]]:
    """``(tombstone id, object id)`` of the deletions in the space not yet applied."""
    rows = conn.execute(
        select(ObjectTombstone.id, ObjectTombstone.object_id).where(
            ObjectTombstone.space_id == space_id, ObjectTombstone.id > cursor.tomb_low
        )
    ).all()
    return [(int(t), int(o)) for t, o in rows if int(t) not in cursor.tomb_above]


def count_objects(conn: Connection, space_id: int) -> int:
    return int(
        conn.execute(
            select(func.count())
            .select_from(DetectedObject)
            .where(DetectedObject.space_id == space_id)
        ).scalar_one()
    )


def object_ids(conn: Connection, space_id: int) -> np.ndarray:
    """Every object id of the space: int64, ascending."""
    ids = conn.execute(
        select(DetectedObject.id)
        .where(DetectedObject.space_id == space_id)
        .order_by(DetectedObject.id)
    ).scalars()
    return np.fromiter((int(i) for i in ids), np.int64)


def id_range(conn: Connection, space_id: int) -> tuple[int, int] | None:
    """``(lowest, highest)`` object id of the space, or None when it has none."""
    low, high = conn.execute(
        select(func.min(DetectedObject.id), func.max(DetectedObject.id)).where(
            DetectedObject.space_id == space_id
        )
    ).one()
    return None if low is None else (int(low), int(high))


def stream_space(
    conn: Connection, space: SpaceInfo, page: int = STREAM_BATCH, *, after: int = -1
) -> Iterator[ObjectRows]:
    """Every object of ``space`` with id ``> after``, in id order, ``page`` rows at a time
    (keyset pages: ``id > last ORDER BY id LIMIT page``, all in the caller's one read
    snapshot), so memory holds one page whatever the space's size. Bad vectors are left out
    of each page and recorded in its ``rejected``."""
    last = after
    while True:
        batch = conn.execute(
            _ROW_SELECT.where(DetectedObject.space_id == space.id, DetectedObject.id > last)
            .order_by(DetectedObject.id)
            .limit(page)
        ).all()
        if not batch:
            return
        last = int(batch[-1][0])
        yield decode_rows(batch, space.dim)
        if len(batch) < page:
            return


def space_cursor(
    conn: Connection, space_id: int, cut: Cut, ids: np.ndarray, rejected: Iterable[int]
) -> Cursor:
    """The cursor a rebuild covers: ``ids`` (every id read, ascending) and ``rejected`` ids
    were read in the same snapshot as ``cut`` (see :func:`read_space`)."""
    tombstones = conn.execute(
        select(ObjectTombstone.id).where(
            ObjectTombstone.space_id == space_id, ObjectTombstone.id > cut.tombstones
        )
    ).scalars()
    return Cursor(
        low=cut.objects,
        above={int(i) for i in ids[np.searchsorted(ids, cut.objects, side="right") :]}
        | {i for i in rejected if i > cut.objects},
        tomb_low=cut.tombstones,
        tomb_above={int(i) for i in tombstones},
    )


def read_space(
    conn: Connection,
    space: SpaceInfo,
    cut: Cut,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[ObjectRows, Cursor]:
    """Every object of ``space`` and the cursor this snapshot covers (for a rebuild).

    ``cut`` must be settled before this snapshot began (PostgreSQL), or read inside it
    (SQLite). Vectors are filled into one preallocated ``[n, D]`` array (the uncompressed
    tiers hold them all in RAM anyway); the compressed tier streams instead
    (:mod:`shared.index.compressed_build`). ``progress("load", rows read, total)`` per page.
    """
    total = count_objects(conn, space.id)
    out = ObjectRows.zeros(total, space.dim)
    columns = out.columns()
    rejected: dict[int, str] = {}
    filled = 0
    for part in stream_space(conn, space):
        rejected.update(part.rejected)
        n = len(part)
        for name, column in part.columns().items():
            columns[name][filled : filled + n] = column
        out.vectors[filled : filled + n] = part.vectors
        filled += n
        if progress is not None:
            progress("load", filled + len(rejected), total)
    rows = out.slice(0, filled)
    rows.rejected = rejected
    return rows, space_cursor(conn, space.id, cut, rows.ids, rejected)
