"""Id-keyed metadata arrays grow at both ends and keep their values."""

from __future__ import annotations

import numpy as np

from shared.index.metadata import ObjectTable
from shared.index.rows import ObjectRows


def rows(ids: list[int], cls: int) -> ObjectRows:
    n = len(ids)
    return ObjectRows(
        ids=np.asarray(ids, np.int64),
        image_ids=np.asarray(ids, np.int64) * 10,
        class_ids=np.full(n, cls, np.int32),
        scores=np.full(n, 0.5, np.float32),
        sides=np.full(n, 3.0, np.float32),
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
    assert again.flag("physical", np.asarray([5001, 4])).tolist() == [True, False]
