"""Snapshots: exact round trip, atomic replacement (a writer killed mid-write leaves the
previous snapshot loadable), and start-up fallback to a rebuild when one is unusable (corrupt,
missing, another database's, an older format)."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from shared.db.database import Database
from shared.index import IndexManager
from shared.index.cursor import Cursor
from shared.index.policy import IndexPlan, IndexPolicy
from shared.index.rows import ObjectRows
from shared.index.snapshots import (
    FORMAT_VERSION,
    SnapshotError,
    read_footer,
    read_snapshot,
    remove_stale_temporaries,
    snapshot_path,
    write_snapshot,
)
from shared.index.space_index import SpaceIndex
from shared.settings import Settings
from tests.factories import (
    boxes_of,
    clustered,
    db_object_ids,
    insert_objects,
    make_space,
)
from tests.shared.index.writers import write_snapshots_forever

DIM = 16
TRAILER = struct.Struct("<QI")  # footer length, footer CRC32 (see shared/index/snapshots.py)
BOX_SECTIONS = {"table.x1", "table.y1", "table.x2", "table.y2"}


def rows_of(x: np.ndarray, first_id: int = 1) -> ObjectRows:
    n = x.shape[0]
    return ObjectRows(
        ids=np.arange(first_id, first_id + n, dtype=np.int64),
        image_ids=np.arange(n, dtype=np.int64) // 3,
        class_ids=(np.arange(n) % 4).astype(np.int32),
        scores=np.linspace(0, 1, n, dtype=np.float32),
        sides=np.full(n, 12.5, np.float32),
        **boxes_of(np.full(n, 12.5), x=np.arange(n) * 0.25, y=np.arange(n) * 0.1 + 0.3),
        vectors=x,
    )


@pytest.mark.parametrize(
    ("kind", "factory"), [("flat", "Flat"), ("hnsw", "HNSW16"), ("ivf", "IVF16,Flat")]
)
def test_round_trip_keeps_index_metadata_and_cursor(
    tmp_path: Path, kind: str, factory: str
) -> None:
    x = clustered(1200, DIM, seed=1)
    cursor = Cursor(low=1000, above={1100, 1150}, tomb_low=7, tomb_above={9})
    space = SpaceIndex.build(3, "key@t", DIM, IndexPlan(kind, factory), rows_of(x), cursor)
    space.remove(np.asarray([5, 6, 7]))
    space.add(rows_of(clustered(2, DIM, seed=2), first_id=6))  # HNSW: into the side index
    path = write_snapshot(tmp_path, space)
    assert path == snapshot_path(tmp_path, 3)
    loaded = read_snapshot(path, space_id=3, space_key="key@t", dim=DIM)
    assert loaded.plan.to_json() == space.plan.to_json()
    assert loaded.cursor == cursor
    for name, column in space.table.used()[1].items():
        assert np.array_equal(loaded.table.used()[1][name], column), name
    some = np.asarray([1, 6, 900, 1200])
    for name in ("image_ids", "class_ids", "scores", "x1", "y1", "x2", "y2"):
        kept = getattr(loaded.table.metadata(some), name)
        assert np.array_equal(kept, getattr(space.table.metadata(some), name)), name
    assert loaded.table.metadata(some).x1.tolist() == [0.0, 0.0, 899 * 0.25, 1199 * 0.25]
    assert loaded.live_count == space.live_count == 1199
    q = x[:20]
    before = space.search(q, 10, None, None)
    after = loaded.search(q, 10, None, None)
    assert [[h.object_id for h in r] for r in before] == [[h.object_id for h in r] for r in after]
    assert read_footer(path)["count"] == 1199
    if kind == "hnsw":
        assert loaded.overflow is not None and loaded.overflow.ntotal == 2


def test_unusable_snapshots_are_refused_with_the_reason(tmp_path: Path) -> None:
    space = SpaceIndex.build(
        1, "k@1", DIM, IndexPlan("flat", "Flat"), rows_of(clustered(50, DIM)), Cursor()
    )
    path = write_snapshot(tmp_path, space)
    with pytest.raises(SnapshotError, match="not this space"):
        read_snapshot(path, space_id=1, space_key="other@1", dim=DIM)
    with pytest.raises(SnapshotError, match="dimension"):
        read_snapshot(path, space_id=1, space_key="k@1", dim=DIM + 1)
    data = bytearray(path.read_bytes())
    data[200] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(SnapshotError, match="checksum"):
        read_snapshot(path, space_id=1, space_key="k@1", dim=DIM)
    path.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(SnapshotError, match="truncated"):
        read_snapshot(path, space_id=1, space_key="k@1", dim=DIM)
    with pytest.raises(SnapshotError, match="no snapshot"):
        read_snapshot(tmp_path / "nope.snapshot", space_id=1, space_key="k@1", dim=DIM)


def as_format_1(path: Path) -> None:
    """Rewrite a snapshot the way format 1 laid it out: no box columns, ``"format": 1``."""
    data = path.read_bytes()
    tail = TRAILER.size + len(b"ROISEND1")
    length, _ = TRAILER.unpack(data[-tail : -len(b"ROISEND1")])
    start = len(data) - tail - length
    footer = json.loads(data[start : start + length])
    footer["format"] = 1
    footer["sections"] = [s for s in footer["sections"] if s["name"] not in BOX_SECTIONS]
    raw = json.dumps(footer, sort_keys=True).encode()
    path.write_bytes(data[:start] + raw + TRAILER.pack(len(raw), zlib.crc32(raw)) + b"ROISEND1")


def test_an_old_format_snapshot_is_refused(tmp_path: Path) -> None:
    space = SpaceIndex.build(
        1, "k@1", DIM, IndexPlan("flat", "Flat"), rows_of(clustered(50, DIM)), Cursor()
    )
    path = write_snapshot(tmp_path, space)
    assert read_footer(path)["format"] == FORMAT_VERSION == 2
    as_format_1(path)
    with pytest.raises(
        SnapshotError, match=f"format 1, this version reads format {FORMAT_VERSION}"
    ):
        read_snapshot(path, space_id=1, space_key="k@1", dim=DIM)


@pytest.mark.slow
def test_a_writer_killed_mid_write_leaves_the_previous_snapshot(tmp_path: Path) -> None:
    small = SpaceIndex.build(
        1, "k@1", DIM, IndexPlan("flat", "Flat"), rows_of(clustered(100, DIM)), Cursor(low=100)
    )
    write_snapshot(tmp_path, small)
    ctx = multiprocessing.get_context("spawn")
    child = ctx.Process(target=write_snapshots_forever, args=(str(tmp_path), 1, "k@1", 200_000, 64))
    child.start()
    deadline = time.monotonic() + 120
    temporaries: list[Path] = []
    while time.monotonic() < deadline and not temporaries:
        temporaries = list(tmp_path.glob(".space-1.snapshot.*.tmp"))
        if not temporaries:
            time.sleep(0.001)
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    assert temporaries, "the writer never started a snapshot"
    survivors = list(tmp_path.glob(".space-1.snapshot.*.tmp"))
    assert survivors, "the kill came after the rename: no mid-write state to test"
    loaded = read_snapshot(snapshot_path(tmp_path, 1), space_id=1, space_key="k@1", dim=DIM)
    assert loaded.live_count == 100 and loaded.cursor.low == 100
    remove_stale_temporaries(tmp_path)
    assert not list(tmp_path.glob("*.tmp"))


def test_start_up_loads_the_snapshot_and_catches_up(
    settings: Settings, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    space = make_space(database, DIM)
    insert_objects(database, space, clustered(40, DIM, seed=3))
    first = IndexManager(settings, database)
    first.sync_once()
    first.sync_once()
    assert first.write_snapshots() == 1
    more = insert_objects(database, space, clustered(7, DIM, seed=4))
    caplog.set_level(logging.INFO, logger="shared.index")
    second = IndexManager(settings, database)
    second.sync_once()
    assert "loaded from its snapshot" in caplog.text
    assert "building it from the database" not in caplog.text
    live = sorted(int(i) for i in second._spaces[space].table.live_ids())
    assert live == db_object_ids(database, space) and set(more) <= set(live)


@pytest.mark.parametrize("damage", ["corrupt", "missing", "foreign", "old-format"])
def test_unusable_snapshot_at_start_up_rebuilds_from_the_database(
    settings: Settings, database: Database, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    space = make_space(database, DIM)
    insert_objects(database, space, clustered(30, DIM, seed=5))
    manager = IndexManager(settings, database)
    manager.sync_once()
    manager.write_snapshots()
    path = snapshot_path(settings.index_dir, space)
    if damage == "corrupt":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x55
        path.write_bytes(bytes(data))
    elif damage == "missing":
        path.unlink()
    elif damage == "old-format":
        as_format_1(path)
    else:  # a snapshot of another database whose space has the same id
        other = SpaceIndex.build(
            space, "other@x", DIM, IndexPlan("flat", "Flat"), rows_of(clustered(5, DIM)), Cursor()
        )
        write_snapshot(settings.index_dir, other)
    caplog.set_level(logging.INFO, logger="shared.index")
    again = IndexManager(settings, database)
    again.sync_once()
    expected = "no index snapshot" if damage == "missing" else "unusable"
    assert expected in caplog.text and f"space {space}" in caplog.text
    if damage == "old-format":
        assert "snapshot format 1" in caplog.text and "rebuilding" in caplog.text
    live = sorted(int(i) for i in again._spaces[space].table.live_ids())
    assert live == db_object_ids(database, space)
    boxes = again.object_metadata(space, live)
    assert boxes.ids.tolist() == live and boxes.x2.tolist() == [21.0 + i % 7 for i in range(30)]


def test_rebuild_writes_a_snapshot_of_the_new_index(settings: Settings, database: Database) -> None:
    space = make_space(database, DIM)
    insert_objects(database, space, clustered(300, DIM, seed=6))
    manager = IndexManager(settings, database, policy=IndexPolicy(flat_max_work=10 * DIM))
    manager.sync_once()
    manager.rebuild(space)
    footer = read_footer(snapshot_path(settings.index_dir, space))
    assert footer["plan"]["kind"] == "ivf" and footer["count"] == 300
