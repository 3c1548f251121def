"""Database rows to arrays: bad vectors are left out with a reason naming the object."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from shared.index.rows import decode_rows


def test_decode_rows_rejects_bad_vectors(caplog: pytest.LogCaptureFixture) -> None:
    good = np.asarray([0.6, 0.8], "<f4").tobytes()
    nan = np.asarray([np.nan, 1.0], "<f4").tobytes()
    rows = [
        (1, 10, 0.0, 0.0, 30.0, 20.0, 2, 0.9, good),
        (2, 10, 0.0, 0.0, 5.0, 5.0, 1, 0.5, good[:4]),
        (3, 11, 0.0, 0.0, 5.0, 5.0, 1, 0.5, nan),
    ]
    with caplog.at_level(logging.ERROR):
        out = decode_rows(rows, 2)
    assert out.ids.tolist() == [1] and out.sides.tolist() == [20.0]
    assert [out.x1.tolist(), out.y1.tolist(), out.x2.tolist(), out.y2.tolist()] == [
        [0.0],
        [0.0],
        [30.0],
        [20.0],
    ]
    assert {c.dtype for c in (out.x1, out.y1, out.x2, out.y2, out.sides)} == {np.dtype(np.float32)}
    assert out.vectors.tolist() == [[pytest.approx(0.6), pytest.approx(0.8)]]
    assert set(out.rejected) == {2, 3} and "4 bytes" in out.rejected[2]
    assert "object 2 cannot be indexed" in caplog.text
