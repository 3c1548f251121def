"""The index/database comparison finds missing, extra and duplicate ids."""

from __future__ import annotations

import numpy as np

from shared.index.consistency import compare


def test_compare_reports_each_kind_of_difference() -> None:
    a = np.asarray
    ok = compare(
        1,
        db_ids=a([1, 2, 3]),
        live_ids=a([1, 2, 3]),
        main_ids=a([3, 1, 2, 9]),
        main_valid=a([True, True, True, False]),  # 9: a deleted HNSW entry, filtered out
        overflow_ids=a([], np.int64),
        rejected={},
    )
    assert ok.ok and ok.count_index == 3 and ok.count_faiss == 4
    bad = compare(
        1,
        db_ids=a([1, 2, 3, 4, 5]),
        live_ids=a([1, 2, 6, 7]),
        main_ids=a([1, 1, 2, 6]),
        main_valid=a([True, True, True, True]),
        overflow_ids=a([], np.int64),
        rejected={5: "vector has 3 bytes"},
    )
    assert not bad.ok
    assert bad.missing == [3, 4]  # 5 is listed as rejected instead
    assert bad.extra == [6, 7]  # 7: "live" in the metadata without any vector
    assert bad.duplicates == [1]
    assert bad.rejected == {"5": "vector has 3 bytes"}
