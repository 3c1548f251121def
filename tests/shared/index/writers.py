"""Writer processes for the concurrent catch-up tests (spawned: importable, no test deps)."""

from __future__ import annotations

import time

import numpy as np

from shared.db.database import Database
from tests.factories import add_objects, boxes_of, delete_objects


def write_objects(
    url: str, space_id: int, dim: int, transactions: int, hold_s: float, seed: int
) -> None:
    """Insert objects in ``transactions`` transactions that stay open a random while (up to
    ``hold_s``) after drawing their ids, so commits land out of id order; some roll back,
    and some committed objects are deleted again (tombstones) by later transactions."""
    rng = np.random.default_rng(seed)
    db = Database.from_url(url)
    mine: list[int] = []
    try:
        for _ in range(transactions):
            vectors = rng.normal(size=(int(rng.integers(1, 6)), dim)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            rollback = rng.random() < 0.15
            try:
                with db.begin() as session:
                    ids = add_objects(session, space_id, vectors)
                    time.sleep(float(rng.uniform(0, hold_s)))
                    if rollback:
                        raise _RolledBackError
            except _RolledBackError:
                continue
            mine.extend(ids)
            if len(mine) > 10 and rng.random() < 0.2:
                doomed = [mine.pop(int(rng.integers(0, len(mine)))) for _ in range(2)]
                delete_objects(db, space_id, doomed)
    finally:
        db.dispose()


class _RolledBackError(Exception):
    pass


def write_snapshots_forever(index_dir: str, space_id: int, key: str, n: int, dim: int) -> None:
    """Write a large snapshot of ``space_id`` again and again (killed by the test)."""
    from pathlib import Path

    from shared.index.cursor import Cursor
    from shared.index.policy import IndexPlan
    from shared.index.rows import ObjectRows
    from shared.index.snapshots import write_snapshot
    from shared.index.space_index import SpaceIndex

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    rows = ObjectRows(
        ids=np.arange(1, n + 1, dtype=np.int64),
        image_ids=np.ones(n, np.int64),
        class_ids=np.zeros(n, np.int32),
        scores=np.ones(n, np.float32),
        sides=np.ones(n, np.float32),
        **boxes_of(np.ones(n)),
        vectors=vectors,
    )
    space = SpaceIndex.build(space_id, key, dim, IndexPlan("flat", "Flat"), rows, Cursor(low=n))
    while True:
        write_snapshot(Path(index_dir), space)
