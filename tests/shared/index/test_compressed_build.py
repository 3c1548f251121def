"""The compressed tier (IVF-PQ + float16 re-ranking from the vector file) through the
IndexManager on SQLite and PostgreSQL: chosen by the memory budget, streamed build with
progress, adds, deletes, filters (exact scan of the file and the PQ path), snapshots (with
their vector file), the consistency check."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from shared.db.database import Database
from shared.index import IndexManager, SearchFilter, space_index
from shared.index.catchup import SpaceInfo, stream_space
from shared.index.policy import IndexPolicy
from shared.index.vector_store import store_path
from shared.settings import Settings
from tests.factories import (
    clustered,
    db_object_ids,
    delete_objects,
    insert_objects,
    make_space,
)

DIM = 16
N = 400
# Every size over budget, no exact tier: the compressed tier from 256 objects up.
COMPRESSED = IndexPolicy(flat_max_work=0, memory_budget_bytes=1)


def seeded(
    settings: Settings, database: Database, n: int = N
) -> tuple[int, np.ndarray, list[int], IndexManager]:
    space = make_space(database, DIM)
    x = clustered(n, DIM, seed=1)
    ids = insert_objects(database, space, x, class_ids=[i % 50 for i in range(n)])
    manager = IndexManager(settings, database, policy=COMPRESSED)
    manager.sync_once()
    return space, x, ids, manager


def live_ids(manager: IndexManager, space: int) -> list[int]:
    return sorted(int(i) for i in manager._spaces[space].table.live_ids())


def recall(manager: IndexManager, space: int, x: np.ndarray, ids: list[int]) -> float:
    # Queries from the same distribution: near stored objects, not themselves.
    noise = np.random.default_rng(9).normal(size=(50, DIM)).astype(np.float32)
    queries = x[::8][:50] + 0.1 * noise / np.sqrt(DIM)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    exact = np.asarray(ids)[np.argsort(-(queries @ x.T), axis=1)[:, :10]]
    got = manager.search(space, queries, 10)
    return float(
        np.mean(
            [len({h.object_id for h in g} & set(e)) / 10 for g, e in zip(got, exact, strict=True)]
        )
    )


def test_the_budget_chooses_it_and_adds_are_searchable(
    settings: Settings, database: Database
) -> None:
    space, x, ids, manager = seeded(settings, database)
    status = manager.status(space)
    assert status.kind == "ivfpq" and status.factory == "IVF10,PQ4x8"
    assert status.params["nprobe"] == 10  # too small to tune: every list
    assert store_path(settings.index_dir, space).stat().st_size > 0
    hits = manager.search(space, x[:5], 10)
    assert [h[0].object_id for h in hits] == ids[:5]
    assert all(abs(h[0].score - 1.0) < 2e-3 for h in hits)  # exact scores, float16 vectors
    assert recall(manager, space, x, ids) >= 0.95

    more_x = clustered(30, DIM, seed=2)
    more = insert_objects(database, space, more_x)
    manager.sync_once()
    assert live_ids(manager, space) == db_object_ids(database, space)
    assert [h[0].object_id for h in manager.search(space, more_x[:3], 1)] == more[:3]
    check = manager.check(space)
    assert check.ok, check


def test_the_settings_budget_reaches_the_policy(settings: Settings, database: Database) -> None:
    budgeted = settings.model_copy(update={"index_memory_budget_mb": 3})
    policy = IndexManager(budgeted, database)._policy
    assert policy.memory_budget_bytes == 3 * 1024 * 1024
    assert policy.choose(6000, 1024).kind == "ivfpq"  # 24 MB of float32 vectors
    unlimited = settings.model_copy(update={"index_memory_budget_mb": 0})
    assert IndexManager(unlimited, database)._policy.memory_budget_bytes is None


def test_deletes_leave_the_index_and_never_come_back(
    settings: Settings, database: Database
) -> None:
    space, x, ids, manager = seeded(settings, database)
    delete_objects(database, space, ids[:50])
    assert manager.remove(space, ids[50:60]) == 10  # at once, before the catch-up
    removed = set(ids[50:60])
    hits = manager.search(space, x[50:60], 10)
    assert all(len(row) == 10 for row in hits)
    assert not removed & {h.object_id for row in hits for h in row}
    delete_objects(database, space, ids[50:60])
    manager.sync_once()
    manager.sync_once()
    assert live_ids(manager, space) == db_object_ids(database, space) == sorted(ids[60:])
    # Removed from the PQ lists for real, not only hidden.
    assert sorted(int(i) for i in manager._spaces[space].main_ids()) == sorted(ids[60:])
    gone = set(ids[:60])
    assert not gone & {h.object_id for row in manager.search(space, x[:60], 10) for h in row}
    assert manager.check(space).ok


@pytest.mark.parametrize("exact_scan_max", [20_000, 0], ids=["file-scan", "pq-selector"])
def test_filters_return_k_matching_objects(
    settings: Settings, database: Database, monkeypatch: pytest.MonkeyPatch, exact_scan_max: int
) -> None:
    monkeypatch.setattr(space_index, "EXACT_SCAN_MAX", exact_scan_max)
    space, x, ids, manager = seeded(settings, database)
    q = x[7:8]
    rare = manager.search(space, q, 10, SearchFilter(class_ids=[7]))[0]
    want = [ids[i] for i in range(7, N, 50)]  # class 7: 8 objects
    assert sorted(h.object_id for h in rare) == sorted(want)
    assert rare[0].object_id == ids[7] and abs(rare[0].score - 1.0) < 2e-3
    exact = sorted(((float(x[i] @ q[0]), ids[i]) for i in range(7, N, 50)), reverse=True)
    assert [h.object_id for h in rare] == [i for _, i in exact]
    wide = manager.search(space, q, 10, SearchFilter(class_ids=list(range(25))))[0]
    assert len(wide) == 10 and all(ids.index(h.object_id) % 50 < 25 for h in wide)
    excluded = manager.search(space, q, 5, SearchFilter(exclude_object_ids=[ids[7]]))[0]
    assert len(excluded) == 5 and ids[7] not in {h.object_id for h in excluded}
    close = manager.search(space, q, 300, SearchFilter(min_similarity=0.9))[0]
    assert close and all(h.score >= 0.9 for h in close)


def test_snapshots_carry_the_vector_file(
    settings: Settings, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    space, x, ids, manager = seeded(settings, database)
    delete_objects(database, space, ids[:5])
    manager.sync_once()
    assert manager.write_snapshots() == 1
    more = insert_objects(database, space, clustered(10, DIM, seed=3))

    with caplog.at_level(logging.INFO):
        loaded = IndexManager(settings, database, policy=COMPRESSED)
        loaded.sync_once()
    assert "loaded from its snapshot" in caplog.text
    assert loaded.status(space).kind == "ivfpq"
    assert live_ids(loaded, space) == sorted(ids[5:] + more)
    manager.sync_once()  # the same objects in both: the same codes, the same answers
    assert loaded.search(space, x[:20], 10) == manager.search(space, x[:20], 10)
    assert loaded.check(space).ok

    # Without its vector file the snapshot is unusable: rebuilt from the database.
    store_path(settings.index_dir, space).unlink()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        rebuilt = IndexManager(settings, database, policy=COMPRESSED)
        rebuilt.sync_once()
    assert "vector file space-" in caplog.text and "is missing" in caplog.text
    assert live_ids(rebuilt, space) == db_object_ids(database, space)
    assert rebuilt.search(space, x[5:6], 1)[0][0].object_id == ids[5]


def test_rebuild_streams_and_reports_progress(settings: Settings, database: Database) -> None:
    space, x, ids, manager = seeded(settings, database, n=2_500)
    seen: list[tuple[str, int, int]] = []
    shown: list[dict[str, object] | None] = []

    def progress(phase: str, done: int, total: int) -> None:
        seen.append((phase, done, total))
        if phase == "train" and not shown:  # what /v1/index/status shows meanwhile
            shown.append(manager.status(space).rebuild_progress)

    manager.rebuild(space, progress=progress)
    assert shown == [{"phase": "train", "done": 0, "total": 1}]
    phases = [p for p, _, _ in seen]
    assert phases[0] == "load" and "train" in phases and phases[-1] == "add"
    assert seen[-1][1:] == (2_500, 2_500)
    loads = [done for p, done, _ in seen if p == "load"]
    assert loads == sorted(loads) and loads[-1] == 2_500
    status = manager.status(space)
    assert status.rebuild_progress is None and status.last_rebuild is not None
    assert status.last_rebuild["error"] is None
    # Tuned on held-out objects (2,500 ≥ the tuning minimum), with re-ranking.
    assert 1 <= status.params["nprobe"] <= 64 and status.params["tuned_recall"] >= 0.97
    assert recall(manager, space, x, ids) >= 0.95
    assert manager.check(space).ok


def test_stream_space_reads_keyset_pages_in_one_snapshot(database: Database) -> None:
    space = make_space(database, DIM)
    ids = insert_objects(database, space, clustered(23, DIM, seed=4))
    other = make_space(database, DIM)
    insert_objects(database, other, clustered(5, DIM, seed=5))
    with database.read_connection() as conn:
        pages = list(stream_space(conn, SpaceInfo(space, "k", DIM), page=7))
    assert [len(p) for p in pages] == [7, 7, 7, 2]
    assert np.concatenate([p.ids for p in pages]).tolist() == sorted(ids)
