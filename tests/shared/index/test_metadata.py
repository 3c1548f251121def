"""Id-keyed metadata arrays grow at both ends, keep their values and describe live ids."""

from __future__ import annotations

import numpy as np

from shared.index.metadata import ObjectTable
from shared.index.rows import ObjectRows
from tests.factories import boxes_of


def rows(ids: list[int], cls: int) -> ObjectRows:
    n = len(ids)
    return ObjectRows(
        ids=np.asarray(ids, np.int64),
        image_ids=np.asarray(ids, np.int64) * 10,
        class_ids=np.full(n, cls, np.int32),
        scores=np.full(n, 0.5, np.float32),
        sides=np.full(n, 3.0, np.float32),
        **boxes_of(np.full(n, 3.0), x=np.asarray(ids) * 0.5),
        vectors=np.zeros((n, 2), np.float32),
    )


def test_grows_both_ways_and_keeps_values() -> None:
    table = ObjectTable()
    table.put(rows([5000, 5001], 1))
    table.put(rows([70_000], 2))
    table.put(rows([17], 3))  # below the base: prepended
    assert table.base <= 17 and table.base % 8 == 0
    assert table.live_ids().tolist() == [17, 5000, 5001, 70_000]
    c = table.columns
    assert c["class_id"][np.asarray([17, 5001, 70_000]) - table.base].tolist() == [3, 1, 2]
    assert c["image_id"][5000 - table.base] == 50_000
    assert table.kill(np.asarray([5001, 9, 10**9])).tolist() == [5001]
    assert table.live_count == 3 and table.stale_count == 1  # still physical
    base, used = table.used()
    again = ObjectTable.from_columns(base, used)
    assert again.live_ids().tolist() == [17, 5000, 70_000]
    assert again.metadata(np.asarray([5000, 70_000])).x1.tolist() == [2500.0, 35_000.0]
    assert again.flag("physical", np.asarray([5001, 4])).tolist() == [True, False]


def test_metadata_is_the_live_ids_in_the_order_asked_with_the_latest_values() -> None:
    table = ObjectTable()
    table.put(rows([40, 41, 42], 1))
    again = rows([41], 2)
    again.x1[:], again.x2[:] = 99.5, 103.0
    table.put(again)  # re-added (HNSW: into the side index): the new values win
    table.kill(np.asarray([42]))
    meta = table.metadata(np.asarray([42, 41, 7, 40, 10**9]))
    assert meta.ids.tolist() == [41, 40]
    assert meta.image_ids.tolist() == [410, 400] and meta.class_ids.tolist() == [2, 1]
    assert meta.x1.tolist() == [99.5, 20.0] and meta.y1.tolist() == [2.0, 2.0]
    assert meta.x2.tolist() == [103.0, 23.0] and meta.y2.tolist() == [10.0, 10.0]
    assert meta.scores.dtype == np.float32 and meta.scores.tolist() == [0.5, 0.5]
    meta.x1[:] = -1  # a copy: the table is untouched
    assert table.metadata(np.asarray([41])).x1.tolist() == [99.5]
    assert len(ObjectTable().metadata(np.asarray([1, 2]))) == 0
