"""One space's index: replace-not-duplicate on re-add, deletes on every index type (HNSW
through the dead-id filter and the exact side index), k larger than the collection."""

from __future__ import annotations

import numpy as np
import pytest

from shared.index.cursor import Cursor
from shared.index.neighbours import Neighbours, merge
from shared.index.policy import IndexPlan
from shared.index.rows import ObjectRows
from shared.index.space_index import SpaceIndex
from tests.factories import boxes_of, clustered

DIM = 16
PLANS = [
    IndexPlan("flat", "Flat"),
    IndexPlan("hnsw", "HNSW16"),
    IndexPlan("ivf", "IVF8,Flat"),
    IndexPlan("custom", "SQ8", override=True),
]


def rows_of(x: np.ndarray, ids: list[int] | np.ndarray) -> ObjectRows:
    n = x.shape[0]
    return ObjectRows(
        ids=np.asarray(ids, np.int64),
        image_ids=np.zeros(n, np.int64),
        class_ids=np.zeros(n, np.int32),
        scores=np.ones(n, np.float32),
        sides=np.ones(n, np.float32),
        **boxes_of(np.ones(n)),
        vectors=np.ascontiguousarray(x),
    )


@pytest.mark.parametrize("plan", PLANS, ids=lambda p: p.kind)
def test_readding_an_id_replaces_it_and_deletes_hold(plan: IndexPlan) -> None:
    x = clustered(2000, DIM, seed=1)
    space = SpaceIndex.build(1, "k", DIM, plan, rows_of(x, np.arange(1, 2001)), Cursor())
    assert space.removable == (plan.kind != "hnsw")
    moved = clustered(1, DIM, seed=99)
    space.add(rows_of(moved, [5]))  # same id, new vector
    ids = space.main_ids()
    assert np.unique(ids).size == ids.size == 2000  # replaced, never duplicated
    if not space.removable:  # HNSW keeps the old vector (filtered); the new one is aside
        assert space.overflow is not None and space.overflow_ids().tolist() == [5]
    hit = space.search(moved, 1, None, None)[0][0]
    assert hit.object_id == 5 and hit.score > 0.98
    old = space.search(x[4:5], 3, None, None)[0]
    assert all(h.object_id != 5 or h.score < 0.99 for h in old)

    assert space.remove(np.asarray([5, 6, 7, 123456])) == 3
    for row in space.search(np.concatenate([moved, x[5:7]]), 2000, None, None):
        assert not {5, 6, 7} & {h.object_id for h in row}
        assert len(row) == 1997
    if not space.removable:
        assert space.table.stale_count == 3  # still in HNSW, filtered until a rebuild
    # Deleted then re-created (SQLite reuses ids): searchable again, once.
    space.add(rows_of(x[5:6], [6]))
    row = space.search(x[5:6], 5, None, None)[0]
    assert row[0].object_id == 6 and [h.object_id for h in row].count(6) == 1
    live = space.table.live_ids()
    assert live.size == 1998 and 5 not in live


def test_k_larger_than_collection_and_empty() -> None:
    x = clustered(5, DIM, seed=2)
    space = SpaceIndex.build(1, "k", DIM, PLANS[0], rows_of(x, [10, 11, 12, 13, 14]), Cursor())
    assert [len(r) for r in space.search(x[:2], 50, None, None)] == [5, 5]
    empty = SpaceIndex.empty(2, "k", DIM, PLANS[0])
    assert empty.search(x[:2], 5, None, None) == [[], []]
    assert space.search(x[:0], 5, None, None) == []


def test_merge_takes_the_best_of_both() -> None:
    a = Neighbours(np.asarray([[0.9, 0.5]], np.float32), np.asarray([[1, 2]]))
    b = Neighbours(np.asarray([[0.7, -np.inf]], np.float32), np.asarray([[3, -1]]))
    m = merge([a, b], 3)
    assert m.ids.tolist() == [[1, 3, 2]]
