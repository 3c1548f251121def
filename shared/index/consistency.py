"""Reports on an index: its status, and a comparison of its ids with the database.

Both are plain dataclasses of JSON-friendly values (the API returns ``dataclasses.asdict``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Ids listed per category in a check report (the counts are always complete).
LISTED_IDS = 100


@dataclass
class IndexStatus:
    """Where one space's index stands.

    ``count_index``: live vectors searchable now; ``count_db``: objects of the space in the
    database now; ``lag``: their difference (objects committed but not yet caught up, minus
    deletions not yet read); ``covers``: the database point the index has applied
    (``low``: every object id up to it is settled and applied; ``open_ids``: ids above it
    already applied); ``snapshot_covers``: the same for the last snapshot written.
    """

    space_id: int
    loaded: bool
    ready: bool
    kind: str | None = None
    factory: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    count_index: int = 0
    count_db: int = 0
    lag: int = 0
    stale_ids: int = 0
    overflow_ids: int = 0
    rejected: int = 0
    covers: dict[str, int] = field(default_factory=dict)
    last_sync_at: str | None = None
    seconds_since_sync: float | None = None
    last_snapshot_at: str | None = None
    snapshot_covers: dict[str, int] | None = None
    rebuilding: bool = False
    last_rebuild: dict[str, Any] | None = None
    # While a rebuild runs: {"phase": "load" | "train" | "add", "done": n, "total": n}.
    rebuild_progress: dict[str, Any] | None = None


@dataclass
class IndexCheck:
    """The index's ids against the database's, at one consistent point.

    ``missing``: objects in the database that searches cannot return; ``extra``: ids the
    index would return that the database no longer has; ``duplicates``: ids stored more than
    once in FAISS; ``rejected``: objects that cannot be indexed (bad vector), with the reason.
    Lists hold at most :data:`LISTED_IDS` ids each; the ``*_count`` fields are complete.
    """

    space_id: int
    ok: bool
    count_index: int
    count_db: int
    count_faiss: int
    missing_count: int = 0
    missing: list[int] = field(default_factory=list)
    extra_count: int = 0
    extra: list[int] = field(default_factory=list)
    duplicates_count: int = 0
    duplicates: list[int] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)


def _listed(ids: np.ndarray) -> list[int]:
    return [int(i) for i in ids[:LISTED_IDS]]


def compare(
    space_id: int,
    *,
    db_ids: np.ndarray,
    live_ids: np.ndarray,
    main_ids: np.ndarray,
    main_valid: np.ndarray,
    overflow_ids: np.ndarray,
    rejected: dict[int, str],
) -> IndexCheck:
    """Compare at one point.

    ``db_ids``: the space's object ids in the database; ``live_ids``: ids the metadata marks
    searchable; ``main_ids``: every id physically in the main FAISS index (duplicates kept)
    and ``main_valid`` (bool, same length) whether that entry may be returned (not a deleted
    HNSW entry, not superseded by the side index); ``overflow_ids``: ids in the side index.
    """
    db = np.unique(db_ids)
    searchable_entries = np.concatenate([main_ids[main_valid], overflow_ids])
    uniq, counts = np.unique(searchable_entries, return_counts=True)
    dup_main, dup_counts = np.unique(main_ids, return_counts=True)
    duplicates = np.union1d(uniq[counts > 1], dup_main[dup_counts > 1])
    # What a search can return is FAISS's content filtered by the live metadata.
    searchable = np.intersect1d(uniq, np.unique(live_ids))
    known_bad = np.fromiter(rejected, np.int64, len(rejected))
    missing = np.setdiff1d(np.setdiff1d(db, searchable), known_bad)
    extra = np.setdiff1d(searchable, db)
    # Metadata saying "live" without a vector in FAISS is an inconsistency too.
    orphans = np.setdiff1d(np.unique(live_ids), uniq)
    missing = np.union1d(missing, np.intersect1d(orphans, db))
    extra = np.union1d(extra, np.setdiff1d(orphans, db))
    in_db_rejected = {int(k): rejected[int(k)] for k in known_bad[np.isin(known_bad, db)]}
    return IndexCheck(
        space_id=space_id,
        ok=not (missing.size or extra.size or duplicates.size),
        count_index=int(searchable.size),
        count_db=int(db.size),
        count_faiss=int(main_ids.size + overflow_ids.size),
        missing_count=int(missing.size),
        missing=_listed(missing),
        extra_count=int(extra.size),
        extra=_listed(extra),
        duplicates_count=int(duplicates.size),
        duplicates=_listed(duplicates),
        rejected={str(k): v for k, v in list(in_db_rejected.items())[:LISTED_IDS]},
    )
