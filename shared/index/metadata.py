"""Per-object metadata held beside a FAISS index, in dense arrays keyed by object id.

Filters (class, detector score, box side, image) are evaluated with numpy over these arrays, so
a filtered search never asks the database per candidate; the same arrays render hits (class,
detector score, box, image: :meth:`ObjectTable.metadata`), so a search answers without the
database too. Object ids come from one table-wide sequence, so a space's ids are dense enough
that id-indexed arrays (:data:`SLOT_BYTES`, 39 bytes per id slot) are smaller and faster than a
hash map; the arrays cover ``[base, base + capacity)`` and grow at either end.

Flags per id slot:

* ``live``: the object exists and may be returned;
* ``physical``: the id is stored in the main FAISS index (for index types that cannot remove
  ids, HNSW, a deleted object stays physical but not live until the next rebuild);
* ``overflow``: the live copy of the id is in the small exact side index, because the main
  index still holds a stale vector under the same id (SQLite can reuse the id of a deleted
  last row).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared.index.rows import ObjectRows

_COLUMNS: dict[str, type] = {
    "live": np.bool_,
    "physical": np.bool_,
    "overflow": np.bool_,
    "class_id": np.int32,
    "score": np.float32,
    "side": np.float32,
    "image_id": np.int64,
    "x1": np.float32,
    "y1": np.float32,
    "x2": np.float32,
    "y2": np.float32,
}

# Memory per id slot (live or not) of one space's table.
SLOT_BYTES = sum(np.dtype(dtype).itemsize for dtype in _COLUMNS.values())


@dataclass(frozen=True)
class ObjectMetadata:
    """What a hit shows of ``n`` objects, as the index holds it (copies, safe without a lock).

    Array contract, row ``i`` describing object ``ids[i]``:

    * ``ids``: int64 ``[n]``; ``image_ids``: int64 ``[n]``;
    * ``class_ids``: int32 ``[n]`` (index into the embedding space's class names);
    * ``scores``: float32 ``[n]``, detector confidence;
    * ``x1``, ``y1``, ``x2``, ``y2``: float32 ``[n]`` each, the box in original-image pixels
      (after EXIF orientation). The database holds doubles: values agree to float32 precision.
    """

    ids: np.ndarray
    image_ids: np.ndarray
    class_ids: np.ndarray
    scores: np.ndarray
    x1: np.ndarray
    y1: np.ndarray
    x2: np.ndarray
    y2: np.ndarray

    @classmethod
    def empty(cls) -> ObjectMetadata:
        return ObjectTable().metadata(np.zeros(0, np.int64))

    def __len__(self) -> int:
        return int(self.ids.shape[0])


class ObjectTable:
    def __init__(self, base: int = 0, capacity: int = 0) -> None:
        self.base = base - base % 8  # byte-aligned, so bitmaps over ids need no bit shifting
        self.columns: dict[str, np.ndarray] = {
            name: np.zeros(capacity, dtype) for name, dtype in _COLUMNS.items()
        }
        # Counts are read on every search: cached, recomputed after a change.
        self._counts: tuple[int, int] | None = None
        self.version = 0  # bumped by every change, for caches derived from the table

    # --- shape -----------------------------------------------------------------------
    @property
    def capacity(self) -> int:
        return int(self.columns["live"].shape[0])

    @property
    def end(self) -> int:
        """One past the highest id slot."""
        return self.base + self.capacity

    def _ensure(self, lo: int, hi: int) -> None:
        """Make slots ``[lo, hi]`` addressable."""
        if self.capacity == 0:
            self.base = lo - lo % 8
            grow = max(hi - self.base + 1, 1024)
            self.columns = {n: np.zeros(grow, d) for n, d in _COLUMNS.items()}
            return
        new_base = min(self.base, lo - lo % 8)
        new_end = self.end
        if hi >= self.end:
            new_end = max(hi + 1, self.base + 2 * self.capacity)
        if new_base == self.base and new_end == self.end:
            return
        offset = self.base - new_base
        size = new_end - new_base
        for name, old in self.columns.items():
            fresh = np.zeros(size, old.dtype)
            fresh[offset : offset + old.shape[0]] = old
            self.columns[name] = fresh
        self.base = new_base

    def slots(self, ids: np.ndarray) -> np.ndarray:
        return np.asarray(ids, np.int64) - self.base

    def in_range(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, np.int64)
        return (ids >= self.base) & (ids < self.end)

    # --- reads -----------------------------------------------------------------------
    def flag(self, name: str, ids: np.ndarray) -> np.ndarray:
        """Column ``name`` (a bool flag) for ``ids``; False for ids outside the table."""
        ids = np.asarray(ids, np.int64)
        out = np.zeros(ids.shape[0], bool)
        inside = self.in_range(ids)
        out[inside] = self.columns[name][ids[inside] - self.base]
        return out

    def metadata(self, ids: np.ndarray) -> ObjectMetadata:
        """The live ones of ``ids`` (in the order given) with their metadata; others are left
        out."""
        ids = np.asarray(ids, np.int64).reshape(-1)
        ids = ids[self.flag("live", ids)]
        s = ids - self.base
        c = self.columns
        return ObjectMetadata(
            ids=ids,
            image_ids=c["image_id"][s],
            class_ids=c["class_id"][s],
            scores=c["score"][s],
            x1=c["x1"][s],
            y1=c["y1"][s],
            x2=c["x2"][s],
            y2=c["y2"][s],
        )

    def ids_where(self, mask: np.ndarray) -> np.ndarray:
        """Object ids of the slots set in ``mask`` (bool ``[capacity]``), ascending."""
        return np.flatnonzero(mask).astype(np.int64) + self.base

    def live_ids(self) -> np.ndarray:
        return self.ids_where(self.columns["live"])

    def _count(self) -> tuple[int, int]:
        counts = self._counts
        if counts is None:
            c = self.columns
            counts = (
                int(np.count_nonzero(c["live"])),
                int(np.count_nonzero(c["physical"] & (~c["live"] | c["overflow"]))),
            )
            self._counts = counts
        return counts

    @property
    def live_count(self) -> int:
        return self._count()[0]

    @property
    def stale_count(self) -> int:
        """Ids held by the main index whose object is gone (or whose live copy overflowed)."""
        return self._count()[1]

    # --- writes ----------------------------------------------------------------------
    def put(self, rows: ObjectRows, *, overflow: np.ndarray | None = None) -> None:
        """Record ``rows`` as live (and physical in the main index unless ``overflow``)."""
        if len(rows) == 0:
            return
        self._counts = None
        self.version += 1
        self._ensure(int(rows.ids.min()), int(rows.ids.max()))
        s = self.slots(rows.ids)
        c = self.columns
        c["live"][s] = True
        c["class_id"][s] = rows.class_ids
        c["score"][s] = rows.scores
        c["side"][s] = rows.sides
        c["image_id"][s] = rows.image_ids
        c["x1"][s] = rows.x1
        c["y1"][s] = rows.y1
        c["x2"][s] = rows.x2
        c["y2"][s] = rows.y2
        in_overflow = np.zeros(len(rows), bool) if overflow is None else overflow
        c["overflow"][s] = in_overflow
        c["physical"][s[~in_overflow]] = True

    def kill(self, ids: np.ndarray) -> np.ndarray:
        """Mark ``ids`` not live; returns the ids that were live."""
        ids = np.asarray(ids, np.int64)
        self._counts = None
        self.version += 1
        was = ids[self.flag("live", ids)]
        s = self.slots(was)
        self.columns["live"][s] = False
        return was

    def unset(self, name: str, ids: np.ndarray) -> None:
        self._counts = None
        self.version += 1
        ids = np.asarray(ids, np.int64)
        inside = ids[self.in_range(ids)]
        self.columns[name][inside - self.base] = False

    # --- persistence -----------------------------------------------------------------
    def used(self) -> tuple[int, dict[str, np.ndarray]]:
        """``(base, columns)`` trimmed to the slots up to the highest set flag."""
        any_flag = self.columns["live"] | self.columns["physical"] | self.columns["overflow"]
        nz = np.flatnonzero(any_flag)
        size = int(nz[-1]) + 1 if nz.size else 0
        return self.base, {n: a[:size] for n, a in self.columns.items()}

    @classmethod
    def from_columns(cls, base: int, columns: dict[str, np.ndarray]) -> ObjectTable:
        missing = set(_COLUMNS) - set(columns)
        if missing:
            raise ValueError(f"metadata columns missing: {sorted(missing)}")
        sizes = {int(columns[n].shape[0]) for n in _COLUMNS}
        if len(sizes) != 1:
            raise ValueError("metadata columns have different lengths")
        table = cls(base)
        table.base = base
        table.columns = {n: np.ascontiguousarray(columns[n], d) for n, d in _COLUMNS.items()}
        table._counts = None
        return table
