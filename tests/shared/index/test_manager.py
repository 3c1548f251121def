"""IndexManager against the real databases (SQLite and PostgreSQL): catch-up, deletes,
filters through the manager, rebuild-and-swap under concurrent searches, status and check."""

from __future__ import annotations

import threading
import time

import faiss
import numpy as np
import pytest
from sqlalchemy import select

from shared.db.database import Database
from shared.db.models import DetectedObject
from shared.index import IndexManager, ObjectMetadata, SearchFilter
from shared.index.policy import IndexPolicy
from shared.index.rwlock import LockBusyError
from shared.settings import Settings
from tests.factories import (
    clustered,
    db_object_ids,
    delete_objects,
    insert_objects,
    link_ingestion,
    make_space,
)

DIM = 16
BOX = ("x1", "y1", "x2", "y2")


def index_ids(manager: IndexManager, space_id: int) -> list[int]:
    space = manager._spaces[space_id]
    return sorted(int(i) for i in space.table.live_ids())


def test_catch_up_adds_new_objects_and_search_finds_them(
    settings: Settings, database: Database
) -> None:
    space = make_space(database, DIM)
    x = clustered(50, DIM, seed=1)
    ids = insert_objects(database, space, x)
    manager = IndexManager(settings, database)
    assert not manager.ready
    manager.sync_once()
    assert manager.ready and manager.sizes() == {space: 50}
    hits = manager.search(space, x[:3], 5, None)
    assert [h[0].object_id for h in hits] == ids[:3]
    assert all(abs(h[0].score - 1.0) < 1e-4 for h in hits)
    assert all(
        [a.score for a in row] == sorted((a.score for a in row), reverse=True) for row in hits
    )

    more = insert_objects(database, space, clustered(10, DIM, seed=2))
    manager.sync_once()
    assert index_ids(manager, space) == sorted(ids + more)
    assert manager.search(space + 100, x[:2], 5, None) == [[], []]
    with pytest.raises(ValueError, match="dimension 8"):
        manager.search(space, np.zeros((1, 8), np.float32), 3, None)


def test_deletes_are_invisible_at_once_and_never_come_back(
    settings: Settings, database: Database
) -> None:
    space = make_space(database, DIM)
    x = clustered(40, DIM, seed=3)
    ids = insert_objects(database, space, x)
    manager = IndexManager(settings, database)
    manager.sync_once()
    doomed = ids[:5]
    delete_objects(database, space, doomed)
    assert manager.remove(space, doomed) == 5
    for hits in manager.search(space, x[:5], 40, None):
        assert not {h.object_id for h in hits} & set(doomed)
        assert len(hits) == 35
    manager.sync_once()
    manager.sync_once()
    assert index_ids(manager, space) == sorted(ids[5:])

    # Deleted by another process (tombstones only): gone after the next catch-up.
    delete_objects(database, space, ids[5:8])
    manager.sync_once()
    assert index_ids(manager, space) == sorted(ids[8:])
    assert manager.check(space).ok


def test_remove_before_the_catch_up_read_it_is_not_undone(
    settings: Settings, database: Database
) -> None:
    """An object the index has not caught up with yet, removed by ``remove``: a catch-up
    whose snapshot still shows the object (taken before the deletion) must not add it."""
    space = make_space(database, DIM)
    manager = IndexManager(settings, database)
    manager.sync_once()
    ids = insert_objects(database, space, clustered(6, DIM, seed=4))
    manager.remove(space, ids[:2])  # as if deleted right after a snapshot saw them
    manager.sync_once()
    assert index_ids(manager, space) == sorted(ids[2:])
    delete_objects(database, space, ids[:2])
    manager.sync_once()
    assert index_ids(manager, space) == sorted(ids[2:])
    assert manager._pending_removes[space] == set()


def test_filters_through_the_manager(settings: Settings, database: Database) -> None:
    space = make_space(database, DIM)
    x = clustered(200, DIM, seed=5)
    first = insert_objects(
        database,
        space,
        x[:100],
        class_ids=[0] * 97 + [3] * 3,
        scores=np.linspace(0.1, 0.9, 100),
        sides=[10] * 90 + [40] * 10,
    )
    second = insert_objects(database, space, x[100:], class_ids=[1] * 100)
    manager = IndexManager(settings, database)
    manager.sync_once()
    with database.read() as session:
        image_of = {o.id: o.image_id for o in session.query(DetectedObject)}
    q = x[150:151]

    rare = manager.search(space, q, 10, SearchFilter(class_ids=[3]))[0]
    assert sorted(h.object_id for h in rare) == sorted(first[97:])
    big = manager.search(space, q, 10, SearchFilter(min_box_side=40))[0]
    assert {h.object_id for h in big} == set(first[90:])
    strong = manager.search(space, q, 500, SearchFilter(min_score=0.85))[0]
    assert strong and all(o in first[-7:] for o in (h.object_id for h in strong))
    ingestion = link_ingestion(database, [image_of[first[0]]])
    mine = manager.search(space, q, 10, SearchFilter(ingestion_ids=[ingestion]))[0]
    assert len(mine) == 10 and {h.object_id for h in mine} <= set(first)
    assert manager.search(space, q, 10, SearchFilter(ingestion_ids=[999_999]))[0] == []
    only = manager.search(space, q, 300, SearchFilter(image_ids=[image_of[second[0]]]))[0]
    assert {h.object_id for h in only} == set(second)
    excluded = manager.search(space, q, 5, SearchFilter(exclude_object_ids=second[50:51]))[0]
    assert second[50] not in {h.object_id for h in excluded} and len(excluded) == 5
    # excluding only ids takes a fast path (search k + n, drop them); it must agree with the
    # candidate-mask path, which min_score=0 (every object passes) forces
    nearest = [h.object_id for h in manager.search(space, q, 3)[0]]
    for k in (1, 5, 20):
        fast = manager.search(space, q, k, SearchFilter(exclude_object_ids=nearest))[0]
        masked = manager.search(
            space, q, k, SearchFilter(exclude_object_ids=nearest, min_score=0.0)
        )[0]
        assert [h.object_id for h in fast] == [h.object_id for h in masked]
        assert len(fast) == k and not set(nearest) & {h.object_id for h in fast}
    close = manager.search(space, q, 200, SearchFilter(min_similarity=0.9))[0]
    assert close and all(h.score >= 0.9 for h in close)
    assert len(close) < 200


def test_new_space_and_second_space_stay_apart(settings: Settings, database: Database) -> None:
    manager = IndexManager(settings, database)
    manager.sync_once()
    assert manager.sizes() == {}
    a = make_space(database, DIM)
    b = make_space(database, 8)
    ids_a = insert_objects(database, a, clustered(20, DIM, seed=6))
    ids_b = insert_objects(database, b, clustered(30, 8, seed=7))
    manager.sync_once()
    assert manager.sizes() == {a: 20, b: 30}
    assert index_ids(manager, a) == sorted(ids_a)
    assert index_ids(manager, b) == sorted(ids_b)


def test_status_and_check(settings: Settings, database: Database) -> None:
    space = make_space(database, DIM)
    ids = insert_objects(database, space, clustered(30, DIM, seed=8))
    manager = IndexManager(settings, database)
    manager.sync_once()
    status = manager.status(space)
    assert status.kind == "flat" and status.count_index == 30 and status.count_db == 30
    assert status.lag == 0 and status.ready
    manager.sync_once()  # PostgreSQL: the fence laid by the first catch-up settles now
    assert manager.status(space).covers["low"] >= max(ids)
    insert_objects(database, space, clustered(5, DIM, seed=9))
    assert manager.status(space).lag == 5
    check = manager.check(space)  # catches up first
    assert check.ok and check.count_index == 35 == check.count_db and check.count_faiss == 35

    # Corrupt the index behind the manager's back: the check must say so.
    live = manager._spaces[space]
    with live.lock.write():
        live.index.remove_ids(faiss.IDSelectorBatch(np.asarray(ids[:2], np.int64)))
    bad = manager.check(space)
    assert not bad.ok and bad.missing == sorted(ids[:2]) and bad.missing_count == 2


def test_background_thread_catches_up_and_snapshots_on_stop(
    settings: Settings, database: Database
) -> None:
    settings = settings.model_copy(update={"index_poll_interval_s": 0.05})
    space = make_space(database, DIM)
    insert_objects(database, space, clustered(10, DIM, seed=10))
    manager = IndexManager(settings, database)
    manager.start()
    deadline = time.monotonic() + 30
    while not manager.ready and time.monotonic() < deadline:
        time.sleep(0.02)
    assert manager.ready
    ids = insert_objects(database, space, clustered(5, DIM, seed=11))
    while time.monotonic() < deadline and not set(ids) <= set(index_ids(manager, space)):
        time.sleep(0.02)
    assert set(ids) <= set(index_ids(manager, space))
    manager.stop()
    assert (settings.index_dir / f"space-{space}.snapshot").is_file()
    assert manager.status(space).last_snapshot_at is not None


def test_rebuild_swaps_while_searches_and_catch_up_run(
    settings: Settings, database: Database
) -> None:
    """Searches from several threads while objects are added, deleted and the index is
    rebuilt from exact search into IVF: no crash, no duplicate, the index ends equal to the
    database."""
    space = make_space(database, DIM)
    x = clustered(600, DIM, seed=12)
    ids = insert_objects(database, space, x)
    policy = IndexPolicy(flat_max_work=100 * DIM)
    manager = IndexManager(settings, database, policy=policy)
    manager.sync_once()
    stop = threading.Event()
    errors: list[BaseException] = []
    searched = [0]

    def searcher(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            while not stop.is_set():
                q = x[rng.integers(0, len(x), size=2)]
                flt = SearchFilter(class_ids=[1]) if rng.random() < 0.5 else None
                for hits in manager.search(space, q, 10, flt):
                    assert len({h.object_id for h in hits}) == len(hits)
                searched[0] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=searcher, args=(s,)) for s in range(3)]
    for t in threads:
        t.start()
    try:
        added: list[int] = []
        for round_ in range(4):
            added += insert_objects(database, space, clustered(40, DIM, seed=100 + round_))
            manager.sync_once()
            if round_ == 1:
                rebuild = threading.Thread(target=manager.rebuild, args=(space,))
                rebuild.start()
            delete_objects(database, space, added[-3:])
            manager.remove(space, added[-3:])
        rebuild.join(timeout=120)
        manager.sync_once()
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors[0]
    assert searched[0] > 0
    assert manager._spaces[space].plan.kind == "ivf"
    assert index_ids(manager, space) == db_object_ids(database, space)
    assert manager.check(space).ok
    assert len(ids) + len(added) - 12 == manager.sizes()[space]


def database_metadata(database: Database, ids: list[int]) -> dict[str, np.ndarray]:
    """The database's values of ``ids`` (in that order) as the index keeps them (float32)."""
    columns = ("image_id", "class_id", "score", *BOX)
    with database.read() as session:
        found = session.execute(
            select(DetectedObject.id, *(getattr(DetectedObject, c) for c in columns)).where(
                DetectedObject.id.in_(ids)
            )
        ).all()
    rows = {int(row[0]): row[1:] for row in found}
    values = dict(zip(columns, zip(*(rows[i] for i in ids), strict=True), strict=True))
    return {
        "image_ids": np.asarray(values["image_id"], np.int64),
        "class_ids": np.asarray(values["class_id"], np.int32),
        "scores": np.asarray(values["score"], np.float32),
        **{c: np.asarray(values[c], np.float32) for c in BOX},
    }


def assert_metadata_is_the_databases(database: Database, meta: ObjectMetadata) -> None:
    expected = database_metadata(database, meta.ids.tolist())
    for name, values in expected.items():
        got = getattr(meta, name)
        assert got.dtype == values.dtype and got.shape == (len(meta),), name
        assert np.array_equal(got, values), name


def test_object_metadata_is_the_live_objects_and_follows_the_database(
    settings: Settings, database: Database
) -> None:
    space = make_space(database, DIM)
    ids = insert_objects(
        database,
        space,
        clustered(30, DIM, seed=13),
        class_ids=[i % 4 for i in range(30)],
        scores=np.linspace(0.25, 0.95, 30),
        sides=np.arange(30) * 1.7 + 8.3,
    )
    manager = IndexManager(settings, database)
    manager.sync_once()
    meta = manager.object_metadata(space, [ids[7], 999_999_999, ids[0], ids[3]])
    assert meta.ids.dtype == np.int64 and meta.ids.tolist() == [ids[7], ids[0], ids[3]]
    assert_metadata_is_the_databases(database, meta)
    assert len(manager.object_metadata(space + 100, ids)) == 0
    assert len(manager.object_metadata(space, [])) == 0

    # Deleted through this process (the API's path): absent at once.
    delete_objects(database, space, [ids[0]])
    manager.remove(space, [ids[0]])
    assert manager.object_metadata(space, [ids[0], ids[1]]).ids.tolist() == [ids[1]]

    # Committed by another process: present once the catch-up applied it.
    more = insert_objects(database, space, clustered(4, DIM, seed=14), scores=[0.3] * 4)
    assert len(manager.object_metadata(space, more)) == 0
    manager.sync_once()
    fresh = manager.object_metadata(space, more)
    assert fresh.ids.tolist() == more
    assert_metadata_is_the_databases(database, fresh)

    # Deleted by another process (tombstones only): visible until the catch-up applies it.
    delete_objects(database, space, [ids[3], more[0]])
    assert manager.object_metadata(space, [ids[3], more[0]]).ids.tolist() == [ids[3], more[0]]
    manager.sync_once()
    assert len(manager.object_metadata(space, [ids[3], more[0]])) == 0
    rest = manager.object_metadata(space, db_object_ids(database, space))
    assert rest.ids.tolist() == db_object_ids(database, space)
    assert_metadata_is_the_databases(database, rest)

    manager.rebuild(space)  # a rebuild reads the same values back from the database
    assert_metadata_is_the_databases(database, manager.object_metadata(space, rest.ids))


def test_a_search_that_must_not_wait_is_refused_while_the_space_is_being_changed(
    settings: Settings, database: Database
) -> None:
    space = make_space(database, DIM)
    x = clustered(40, DIM, seed=21)
    ids = insert_objects(database, space, x)
    manager = IndexManager(settings, database)
    manager.sync_once()
    assert manager.search(space, x[:1], 3, blocking=False)[0][0].object_id == ids[0]
    with manager._spaces[space].lock.write():  # what a catch-up or a rebuild swap holds
        with pytest.raises(LockBusyError):
            manager.search(space, x[:1], 3, blocking=False)
        with pytest.raises(LockBusyError):
            manager.object_metadata(space, ids[:2], blocking=False)
    assert manager.object_metadata(space, ids[:2], blocking=False).ids.tolist() == ids[:2]


def test_search_work_estimates_and_the_cheap_search_test(
    settings: Settings, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    space = make_space(database, DIM)
    insert_objects(database, space, clustered(2_000, DIM, seed=22))
    flat = IndexManager(settings, database)
    flat.sync_once()
    assert flat._spaces[space].search_work() == 2_000 * DIM  # an exact scan of every vector
    ivf = IndexManager(settings, database, policy=IndexPolicy(flat_max_work=100 * DIM))
    ivf.sync_once()
    index = ivf._spaces[space]
    assert index.plan.kind == "ivf" and index.ivf is not None
    nlist, nprobe = int(index.ivf.nlist), int(index.plan.params["nprobe"])
    per_list = -(-2_000 // nlist)
    assert index.search_work() == (nlist + nprobe * per_list) * DIM
    assert flat.searches_are_cheap() and ivf.searches_are_cheap()
    monkeypatch.setattr("shared.index.manager.CHEAP_SEARCH_WORK", 2_000 * DIM - 1)
    assert not flat.searches_are_cheap()  # the exact scan is now over the budget
    assert ivf.searches_are_cheap()
