"""The compressed tier's float16 vector file: writes by id, sparse growth, memory-mapped
reads shared between processes' stores, exact re-ranking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shared.index.vector_store import GROW_ROWS, VectorStore, store_path
from tests.factories import clustered

DIM = 16


def test_writes_by_id_read_back_at_float16_precision(tmp_path: Path) -> None:
    store = VectorStore(store_path(tmp_path, 3), DIM)
    assert store.path.name == "space-3.f16" and store.rows == 0
    x = clustered(40, DIM, seed=1)
    ids = np.asarray([*range(100, 120), 5, 9, *range(300_000, 300_018)], np.int64)
    order = np.random.default_rng(0).permutation(ids.size)  # any order, gaps and runs
    store.write(ids[order], x[order])
    assert store.rows == 5 * GROW_ROWS  # grown in steps past the highest id
    got = store.read(ids)
    assert got.dtype == np.float32 and got.shape == (40, DIM)
    assert np.abs(got - x).max() < 1e-3
    assert not store.read(np.asarray([6, 7])).any()  # never written: zeros (a hole)
    # Sparse: the file uses far less disk than its length.
    assert store.path.stat().st_blocks * 512 < store.path.stat().st_size // 4
    with pytest.raises(KeyError, match="beyond the vector file"):
        store.read(np.asarray([10 * GROW_ROWS]))
    with pytest.raises(ValueError, match="shape"):
        store.write(ids[:2], x[:3])


def test_a_second_store_on_the_file_sees_writes_and_growth(tmp_path: Path) -> None:
    path = store_path(tmp_path, 1)
    writer, reader = VectorStore(path, DIM), VectorStore(path, DIM)
    x = clustered(3, DIM, seed=2)
    writer.write(np.asarray([1, 2]), x[:2])
    assert np.allclose(reader.read(np.asarray([2])), x[1], atol=1e-3)
    writer.write(np.asarray([5 * GROW_ROWS]), x[2:])  # the reader remaps to the new length
    assert np.allclose(reader.read(np.asarray([5 * GROW_ROWS, 1])), x[[2, 0]], atol=1e-3)
    writer.flush()
    writer.close()
    assert np.allclose(reader.read(np.asarray([1])), x[0], atol=1e-3)


def test_rerank_orders_candidates_by_exact_score(tmp_path: Path) -> None:
    store = VectorStore(store_path(tmp_path, 1), DIM)
    x = clustered(50, DIM, seed=3)
    ids = np.arange(10, 60, dtype=np.int64)
    store.write(ids, x)
    queries = clustered(2, DIM, seed=4)
    candidates = np.stack([ids[::2], np.where(np.arange(25) < 3, ids[:25], -1)])
    scores, top = store.rerank(queries, candidates, 5)
    exact = queries[0] @ x[::2].T
    want = ids[::2][np.argsort(-exact)[:5]]
    assert top[0].tolist() == want.tolist()
    assert np.allclose(scores[0], np.sort(exact)[::-1][:5], atol=2e-3)
    # Fewer valid candidates than k: the rest is -1 / -inf.
    assert sorted(top[1, :3].tolist()) == ids[:3].tolist() and top[1, 3:].tolist() == [-1, -1]
    assert np.isneginf(scores[1, 3:]).all()
