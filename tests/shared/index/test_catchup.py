"""No object is ever skipped or duplicated when ids commit out of order (PostgreSQL), and
SQLite's reuse of deleted ids is caught up correctly."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from shared.db.database import Database
from shared.index import IndexManager
from shared.index.policy import IndexPolicy
from shared.settings import Settings, load_settings
from tests.conftest import _truncate_pg
from tests.factories import (
    add_image,
    add_objects,
    clustered,
    db_object_ids,
    delete_objects,
    insert_objects,
    make_space,
)
from tests.shared.index.writers import write_objects

DIM = 8


def index_ids(manager: IndexManager, space_id: int) -> list[int]:
    return sorted(int(i) for i in manager._spaces[space_id].table.live_ids())


def faiss_ids(manager: IndexManager, space_id: int) -> list[int]:
    return sorted(int(i) for i in manager._spaces[space_id].main_ids())


@pytest.fixture
def pg_database(pg_url: str) -> Iterator[Database]:
    _truncate_pg(pg_url)
    db = Database.from_url(pg_url)
    yield db
    db.dispose()


@pytest.fixture
def pg_settings(tmp_path: Path, pg_url: str) -> Settings:
    return load_settings(data_dir=tmp_path / "data", database_url=pg_url)


@pytest.mark.postgres
def test_a_transaction_committing_below_indexed_ids_is_not_skipped(
    pg_settings: Settings, pg_database: Database
) -> None:
    db = pg_database
    space = make_space(db, DIM)
    manager = IndexManager(pg_settings, db)
    manager.sync_once()
    with Session(db.engine) as held, held.begin():
        late = add_objects(held, space, clustered(2, DIM, seed=1))  # lowest ids, uncommitted
        early = insert_objects(db, space, clustered(3, DIM, seed=2))  # higher ids, committed
        assert max(late) < min(early)
        for _ in range(3):
            manager.sync_once()
        assert index_ids(manager, space) == sorted(early)
        # The horizon is held below the open transaction's ids.
        assert manager._spaces[space].cursor.low < min(late)
    manager.sync_once()
    assert index_ids(manager, space) == sorted(late + early) == faiss_ids(manager, space)
    manager.sync_once()
    assert manager._spaces[space].cursor.low >= max(early)


@pytest.mark.postgres
def test_an_id_drawn_before_the_transaction_has_an_xid_is_not_skipped(
    pg_settings: Settings, pg_database: Database
) -> None:
    """``nextval`` does not give a transaction an xid: a horizon from
    ``pg_current_snapshot()`` alone would pass this id while it is still uncommitted."""
    db = pg_database
    space = make_space(db, DIM)
    with db.begin() as session:
        image = add_image(session)
    warm = insert_objects(db, space, clustered(1, DIM, seed=2))  # the sequence is logged ahead
    manager = IndexManager(pg_settings, db)
    manager.sync_once()
    with db.engine.connect() as conn:
        for _ in range(5):
            tx = conn.begin()
            drawn = int(conn.execute(text("SELECT nextval('objects_id_seq')")).scalar_one())
            if conn.execute(text("SELECT pg_current_xact_id_if_assigned()")).scalar() is None:
                break
            tx.rollback()  # a checkpoint made this nextval WAL-log (and take an xid): again
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        later = insert_objects(db, space, clustered(3, DIM, seed=3))
        for _ in range(3):
            manager.sync_once()
        with db.engine.connect() as probe:
            xid = probe.execute(
                text("SELECT backend_xid FROM pg_stat_activity WHERE pid = :p"), {"p": pid}
            ).scalar_one()
        assert xid is None  # the scenario: no xid yet, invisible to snapshot xmin/xip
        assert index_ids(manager, space) == sorted(warm + later)
        assert manager._spaces[space].cursor.low < drawn
        vector = clustered(1, DIM, seed=4)[0].astype("<f4").tobytes()
        conn.execute(
            text(
                "INSERT INTO objects (id, image_id, space_id, ordinal, x1, y1, x2, y2, "
                "class_id, class_name, score, vector, created_at) VALUES (:id, :img, :sp, 99, "
                "0, 0, 5, 5, 0, 'cat', 0.9, :v, now())"
            ),
            {"id": drawn, "img": image, "sp": space, "v": vector},
        )
        tx.commit()
    manager.sync_once()
    assert index_ids(manager, space) == sorted([drawn, *warm, *later])


@pytest.mark.slow
@pytest.mark.parametrize("tier", ["automatic", "compressed"])
def test_concurrent_writer_processes_nothing_skipped_or_duplicated(
    settings: Settings, database: Database, db_url: str, tier: str
) -> None:
    """Four processes insert (and some delete) in transactions that commit out of id order,
    one holding its transactions open much longer, while the index catches up continually.
    ``compressed``: the same on the compressed tier (IVF-PQ + vector file), forced by a tiny
    memory budget over 300 objects first (its codebooks need 256 to train)."""
    space = make_space(database, DIM)
    policy = None
    if tier == "compressed":
        policy = IndexPolicy(flat_max_work=0, memory_budget_bytes=1)
        insert_objects(database, space, clustered(300, DIM, seed=3))
    manager = IndexManager(settings, database, policy=policy)
    manager.sync_once()
    assert manager.status(space).kind == ("ivfpq" if policy else "flat")
    ctx = multiprocessing.get_context("spawn")
    writers = [
        ctx.Process(target=write_objects, args=(db_url, space, DIM, 15, 0.03, seed))
        for seed in range(3)
    ]
    writers.append(ctx.Process(target=write_objects, args=(db_url, space, DIM, 4, 0.4, 99)))
    for w in writers:
        w.start()
    syncs = 0
    deadline = time.monotonic() + 120
    while any(w.is_alive() for w in writers) and time.monotonic() < deadline:
        manager.sync_once()
        syncs += 1
        time.sleep(0.01)  # leave the (two) cores to the writers
    for w in writers:
        w.join(timeout=30)
        assert w.exitcode == 0
    manager.sync_once()
    manager.sync_once()
    in_db = db_object_ids(database, space)
    assert syncs > 5 and len(in_db) > 50
    assert index_ids(manager, space) == in_db
    assert faiss_ids(manager, space) == in_db  # no duplicates in FAISS either
    check = manager.check(space)
    assert check.ok, check


@pytest.mark.parametrize("tier", ["automatic", "compressed"])
def test_sqlite_reused_ids_are_indexed_as_the_new_objects(
    sqlite_url: str, tmp_path: Path, tier: str
) -> None:
    """``compressed``: a reused id's row of the vector file is overwritten with the new
    object's vector, and searches re-rank with it."""
    db = Database.from_url(sqlite_url)
    settings = load_settings(data_dir=tmp_path / "data", database_url=sqlite_url)
    try:
        space = make_space(db, DIM)
        policy = None
        if tier == "compressed":
            policy = IndexPolicy(flat_max_work=0, memory_budget_bytes=1)
            insert_objects(db, space, clustered(300, DIM, seed=4))
        ids = insert_objects(db, space, clustered(10, DIM, seed=5))
        manager = IndexManager(settings, db, policy=policy)
        manager.sync_once()
        assert manager.status(space).kind == ("ivfpq" if policy else "flat")

        # The last rows deleted, new rows take their ids (SQLite has no AUTOINCREMENT here).
        delete_objects(db, space, ids[-3:])
        fresh = clustered(2, DIM, seed=6)
        reused = insert_objects(db, space, fresh)
        assert set(reused) <= set(ids[-3:])
        manager.sync_once()
        assert index_ids(manager, space) == db_object_ids(db, space)
        hits = manager.search(space, fresh, 1, None)
        assert [h[0].object_id for h in hits] == reused and hits[0][0].score > 0.999

        # A non-last row deleted and caught up first; then the rows above it go and its id
        # comes back for a new row: the catch-up after that must read it.
        current = db_object_ids(db, space)
        delete_objects(db, space, [current[-2]])
        manager.sync_once()
        delete_objects(db, space, [current[-1]])
        again = insert_objects(db, space, clustered(1, DIM, seed=7))
        assert again[0] <= current[-1]
        manager.sync_once()
        assert index_ids(manager, space) == db_object_ids(db, space) == faiss_ids(manager, space)
        assert manager.check(space).ok
    finally:
        db.dispose()


def test_read_objects_comes_in_pages_and_skips_applied_ids(database: Database) -> None:
    """A catch-up holds one page of a backlog at a time (both read paths)."""
    from shared.index.catchup import SpaceInfo, read_objects

    space = make_space(database, DIM)
    ids = insert_objects(database, space, clustered(23, DIM, seed=8))
    info = SpaceInfo(space, "k", DIM)
    with database.read_connection() as conn:
        plain = list(read_objects(conn, info, ids[2], set(), page=7))
        open_ids = list(read_objects(conn, info, ids[2], {ids[5], ids[6]}, page=7))
    assert [len(rows) for rows, _ in plain] == [7, 7, 6]
    assert [i for _, seen in plain for i in seen] == ids[3:]
    assert [len(rows) for rows, _ in open_ids] == [7, 7, 4]
    want = [i for i in ids[3:] if i not in {ids[5], ids[6]}]
    assert [int(i) for rows, _ in open_ids for i in rows.ids] == want
