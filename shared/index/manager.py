"""The process's vector index: one FAISS index per embedding space, kept in step with the DB.

Lifecycle: :meth:`IndexManager.start` starts one background thread that loads each space's
snapshot (or builds it from the database, saying so in the log), catches up, and then polls
the database every ``index_poll_interval_s`` and writes snapshots every
``index_snapshot_interval_s``; :meth:`IndexManager.stop` joins it and writes a final snapshot.

Hits are rendered from memory: :meth:`IndexManager.search` gives ids and scores,
:meth:`IndexManager.object_metadata` what a hit shows of them (class, detector score, box,
image), with no database read.

Concurrency: one writer at a time applies changes (``_sync_lock`` serialises catch-ups, rebuild
swaps and checks); each space has a readers-writer lock, so searches run concurrently and never
see a half-applied change. A rebuild builds the new index without any lock, then, under
``_sync_lock``, catches it up and swaps it in (searches keep using the old one meanwhile).
:meth:`IndexManager.remove` takes effect at once and is remembered until the matching
tombstones are read, so a catch-up that read the database just before the deletion cannot
bring the objects back.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import faiss
import numpy as np
from sqlalchemy import select

from shared.db.database import Database
from shared.db.models import IngestionItem
from shared.index.catchup import (
    SpaceInfo,
    count_objects,
    list_spaces,
    object_ids,
    read_objects,
    read_tombstones,
)
from shared.index.compressed_build import Progress
from shared.index.consistency import IndexCheck, IndexStatus, compare
from shared.index.filters import SearchFilter, allowed_images, candidate_mask
from shared.index.horizon import Cut, PgHorizon, sqlite_cut
from shared.index.metadata import ObjectMetadata
from shared.index.policy import IndexPolicy
from shared.index.rows import ObjectRows
from shared.index.snapshots import (
    SnapshotError,
    read_snapshot,
    remove_stale_temporaries,
    snapshot_path,
    write_snapshot,
)
from shared.index.space_build import SpaceBuilder, log_build_progress
from shared.index.space_index import Hit, RebuildState, SpaceIndex
from shared.settings import Settings

log = logging.getLogger(__name__)

# Minimum time between two automatic rebuild attempts of one space (a failing one included).
AUTO_REBUILD_BACKOFF_S = 600.0
MAX_BACKOFF_FACTOR = 32
# A search of at most this many multiply-adds takes ~0.3–0.6 ms of one core here (exact Flat
# scans run at ~7 GMAC/s on this CPU: 22.4M for 100k × 224-d in 3.3 ms).
CHEAP_SEARCH_WORK = 4_000_000


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def _with_last(
    pages: Iterator[tuple[ObjectRows, list[int]]], dim: int
) -> Iterator[tuple[tuple[ObjectRows, list[int]], bool]]:
    """Each page with True for the last one; a single empty page when there is none."""
    previous: tuple[ObjectRows, list[int]] | None = None
    for page in pages:
        if previous is not None:
            yield previous, False
        previous = page
    yield (previous if previous is not None else (ObjectRows.empty(dim), [])), True


class IndexManager:
    """All embedding spaces' indexes of this process (build once, at an entry point)."""

    def __init__(
        self, settings: Settings, db: Database, *, policy: IndexPolicy | None = None
    ) -> None:
        self._settings = settings
        self._db = db
        budget_mb = settings.index_memory_budget_mb
        self._policy = policy or IndexPolicy(
            memory_budget_bytes=budget_mb * 1024 * 1024 if budget_mb else None
        )
        self._index_dir = settings.index_dir
        self._horizon = PgHorizon() if db.dialect == "postgresql" else None
        self._builder = SpaceBuilder(
            db, self._horizon, self._policy, settings.index_factory, self._index_dir
        )
        self._spaces: dict[int, SpaceIndex] = {}
        self._spaces_lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._pending_removes: dict[int, set[int]] = {}
        self._rebuild_locks: dict[int, threading.Lock] = {}
        self._rebuilds: dict[int, RebuildState] = {}
        self._auto_attempts: dict[int, float] = {}
        self._loaded = False
        self._ready = False
        self._last_sync_at: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Load or build every space's index and keep it caught up, in a background thread."""
        if self._thread is not None and self._thread.is_alive():
            return
        remove_stale_temporaries(self._index_dir)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="index-sync", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling (joins the thread) and write a final snapshot of changed spaces."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._loaded:
            try:
                self.write_snapshots()
            except Exception:
                log.exception("final index snapshot failed")

    @property
    def ready(self) -> bool:
        """True once every space was loaded and caught up with the database at least once."""
        return self._ready

    def _run(self) -> None:
        faiss.omp_set_num_threads(os.cpu_count() or 1)  # builds and batch adds: every core
        next_snapshot = time.monotonic() + self._settings.index_snapshot_interval_s
        failures = 0
        while not self._stop.is_set():
            try:
                self.sync_once()
                failures = 0
            except Exception:
                failures += 1
                log.exception("index catch-up failed (attempt %d); retrying", failures)
            if self._loaded and time.monotonic() >= next_snapshot:
                try:
                    self.write_snapshots()
                except Exception:
                    log.exception("index snapshot failed")
                next_snapshot = time.monotonic() + self._settings.index_snapshot_interval_s
            if self._loaded:
                self._auto_rebuild()
            backoff = min(2**failures, MAX_BACKOFF_FACTOR) if failures else 1
            self._stop.wait(self._settings.index_poll_interval_s * backoff)

    # --- catch-up ----------------------------------------------------------------------
    def sync_once(self) -> None:
        """Catch up with the database now (load or build the indexes first if needed)."""
        with self._sync_lock:
            self._catch_up()
            self._loaded = True
            self._ready = True
            self._last_sync_at = time.time()

    def _space_infos(self) -> list[SpaceInfo]:
        with self._db.read_connection() as conn:
            return list_spaces(conn)

    def _sync_spaces(self) -> dict[int, SpaceInfo]:
        """Load/build indexes of spaces new to this process; drop those gone from the DB."""
        infos = {info.id: info for info in self._space_infos()}
        for space_id, info in infos.items():
            current = self._spaces.get(space_id)
            if current is not None and current.space_key == info.identity:
                continue
            space = self._load_or_build(info) if not self._loaded else self._build(info)
            with self._spaces_lock:
                self._spaces[space_id] = space
        with self._spaces_lock:
            for space_id in set(self._spaces) - set(infos):
                log.info("embedding space %d is gone from the database: index dropped", space_id)
                del self._spaces[space_id]
        return infos

    def _load_or_build(self, info: SpaceInfo) -> SpaceIndex:
        path = snapshot_path(self._index_dir, info.id)
        if not path.exists():
            log.info("no index snapshot for space %d: building it from the database", info.id)
            return self._build(info)
        try:
            space = read_snapshot(path, space_id=info.id, space_key=info.identity, dim=info.dim)
        except SnapshotError as exc:
            log.warning(
                "index snapshot %s of space %d is unusable (%s): rebuilding from the database",
                path,
                info.id,
                exc,
            )
            return self._build(info)
        log.info(
            "index of space %d loaded from its snapshot: %d objects (%s), catching up from "
            "object id %d",
            info.id,
            space.live_count,
            space.plan.factory,
            space.cursor.low,
        )
        return space

    def _settled_before_snapshot(self) -> Cut | None:
        """PostgreSQL: settle fences (before the data snapshot is opened)."""
        if self._horizon is None:
            return None
        with self._db.engine.connect() as conn:
            cut = self._horizon.advance(conn)
            if not self._loaded:
                # Start-up: settle the fence just laid at once if nothing was running, so the
                # first builds start from a settled point (not from id 0 with every id open).
                cut = self._horizon.advance(conn)
            conn.rollback()
        return cut

    def _build(self, info: SpaceInfo, progress: Progress | None = None) -> SpaceIndex:
        """A new index of ``info`` from every object in the database (no lock needed)."""
        settled = self._horizon.settled if self._horizon is not None else None
        return self._builder.build(info, settled, progress)

    def _catch_up(
        self, targets: dict[int, SpaceIndex] | None = None, *, ids_of: int | None = None
    ) -> np.ndarray | None:
        """Apply every committed change since each target's cursor (``_sync_lock`` held).

        ``targets``: spaces to catch up (default: all, after loading new ones). ``ids_of``: also
        return that space's object ids as of the very snapshot applied (for :meth:`check`).
        """
        cut = self._settled_before_snapshot()
        if targets is None:
            self._sync_spaces()
            targets = dict(self._spaces)
        db_ids: np.ndarray | None = None
        with self._db.read_connection() as conn:
            if cut is None:
                cut = sqlite_cut(conn)
            if ids_of is not None:
                db_ids = object_ids(conn, ids_of)
            tombstones = {
                space_id: read_tombstones(conn, space_id, space.cursor)
                for space_id, space in targets.items()
            }
            removed = {
                space_id: np.asarray([o for _, o in tombs], np.int64)
                for space_id, tombs in tombstones.items()
            }
            floor = self._reuse_floor(targets, removed) if cut.exact else None
            for space_id, space in targets.items():
                after = space.cursor.low if floor is None else min(space.cursor.low, floor)
                info = SpaceInfo(space_id, space.space_key, space.dim)
                applied = space.cursor.above if floor is None else set()
                # Applied page by page inside the read snapshot (memory: one page); the
                # cursor moves to the cut only with the last one.
                pages = _with_last(read_objects(conn, info, after, set(applied)), space.dim)
                for number, ((rows, seen), last) in enumerate(pages):
                    tombs = tombstones[space_id] if number == 0 else []
                    self._apply(space, rows, seen, tombs, cut, final=last)
        return db_ids

    def _reuse_floor(
        self, targets: dict[int, SpaceIndex], removed: dict[int, np.ndarray]
    ) -> int | None:
        """SQLite reuses the highest id once its row is deleted. After deletions, every id
        above the highest object still live (in any space) may hold a new row: read from
        there. None when nothing was deleted (nothing can have been reused)."""
        if not any(r.size for r in removed.values()):
            return None
        spaces = {**self._spaces, **targets}
        floor = 0
        for space_id, space in spaces.items():
            with space.lock.read():
                live = space.table.live_ids()
            gone = removed.get(space_id)
            if gone is not None and gone.size:
                live = live[~np.isin(live, gone)]
            if live.size:
                floor = max(floor, int(live[-1]))
        return floor

    def _apply(
        self,
        space: SpaceIndex,
        rows: ObjectRows,
        seen: list[int],
        tombstones: list[tuple[int, int]],
        cut: Cut,
        *,
        final: bool = True,
    ) -> None:
        """Apply one page of a catch-up; ``final``: the last one (the cursor then moves)."""
        deleted = np.asarray([o for _, o in tombstones], np.int64)
        with self._spaces_lock:
            pending = self._pending_removes.get(space.space_id)
            if pending is not None and deleted.size:
                pending.difference_update(int(i) for i in deleted)
            skip = set(pending) if pending else set()
        if skip and len(rows):
            rows = rows.take(~np.isin(rows.ids, np.fromiter(skip, np.int64, len(skip))))
        if rows.rejected:
            # Known bad rows are re-read when SQLite reuse forces a wider read: no new log.
            rows.rejected = {k: v for k, v in rows.rejected.items() if k not in space.rejected}
        before = space.cursor.copy()
        if not (len(rows) or deleted.size or seen or tombstones):
            if not final:
                return
            after = before.copy()
            after.advance(cut.objects, cut.tombstones, exact=cut.exact)
            if after == before:
                return  # nothing to do: no write lock, searches are not held up
        with space.lock.write():
            if deleted.size:
                space.remove(deleted)
            space.add(rows)
            space.cursor.above.update(seen)
            space.cursor.tomb_above.update(t for t, _ in tombstones)
            if final:
                space.cursor.advance(cut.objects, cut.tombstones, exact=cut.exact)
            if space.cursor.low != before.low or space.cursor.tomb_low != before.tomb_low:
                space.dirty = True

    # --- snapshots ---------------------------------------------------------------------
    def write_snapshots(self, *, force: bool = False) -> int:
        """Write a snapshot of every space changed since its last one; returns how many.

        Holds ``_sync_lock`` (no catch-up meanwhile) and each space's read lock: searches go
        on, a :meth:`remove` waits for the write to finish.
        """
        written = 0
        with self._sync_lock:
            for space in list(self._spaces.values()):
                if not (force or space.dirty or space.last_snapshot_at is None):
                    continue
                with space.lock.read():
                    write_snapshot(self._index_dir, space)
                    space.dirty = False
                written += 1
        return written

    # --- queries -----------------------------------------------------------------------
    def sizes(self) -> dict[int, int]:
        """Live (searchable) vectors per space id."""
        return {space_id: space.live_count for space_id, space in list(self._spaces.items())}

    def _ingestion_images(self, ingestion_ids: Sequence[int]) -> np.ndarray:
        # Membership changes without any object changing (a known image linked by a new
        # ingestion, an ingestion deleted), so it is read per search: one indexed query.
        with self._db.read() as session:
            rows = session.scalars(
                select(IngestionItem.image_id)
                .where(
                    IngestionItem.ingestion_id.in_(list(ingestion_ids)),
                    IngestionItem.image_id.is_not(None),
                )
                .distinct()
            )
            return np.fromiter((int(i) for i in rows if i is not None), np.int64)

    def searches_are_cheap(self) -> bool:
        """True if one unfiltered (or exclude-only) query is expected to take well under a
        millisecond of one core in every space: estimated work at most
        :data:`CHEAP_SEARCH_WORK` multiply-adds. Callers use it to skip a thread hop that
        would cost more than the search itself (the API's search by id)."""
        for space in list(self._spaces.values()):
            work = space.search_work()
            if work is None or work > CHEAP_SEARCH_WORK:
                return False
        return True

    def search(
        self,
        space_id: int,
        queries: np.ndarray,
        k: int,
        flt: SearchFilter | None = None,
        *,
        blocking: bool = True,
    ) -> list[list[Hit]]:
        """Top-``k`` objects per query, best first.

        ``queries``: float32 ``[Q, D]``, L2-normalised, in space ``space_id``. Returns ``Q``
        lists of :class:`Hit` (cosine similarity, descending); an unknown or empty space gives
        empty lists. Raises ``ValueError`` when ``D`` is not the space's dimension, and
        :class:`~shared.index.rwlock.LockBusyError` when ``blocking`` is False and the space is
        being changed (a catch-up or a rebuild swap holds it) — for callers that must not wait.
        """
        queries = np.ascontiguousarray(queries, np.float32)
        if queries.ndim != 2:
            raise ValueError(f"queries must be [Q, D], got shape {queries.shape}")
        space = self._spaces.get(space_id)
        if space is None or k <= 0:
            return [[] for _ in range(queries.shape[0])]
        if queries.shape[1] != space.dim:
            raise ValueError(
                f"queries have dimension {queries.shape[1]}, space {space_id} has {space.dim}"
            )
        images = None
        if flt is not None:
            linked = self._ingestion_images(flt.ingestion_ids) if flt.ingestion_ids else None
            if flt.ingestion_ids is not None and not flt.ingestion_ids:
                linked = np.zeros(0, np.int64)
            images = allowed_images(flt, linked)
        min_similarity = flt.min_similarity if flt else None
        if flt is not None and flt.only_excludes and len(flt.exclude_object_ids or ()) <= k:
            excluded = set(flt.exclude_object_ids or ())
            with space.lock.read(blocking=blocking):
                wider = space.search(queries, k + len(excluded), None, min_similarity)
            return [[h for h in hits if h.object_id not in excluded][:k] for hits in wider]
        with space.lock.read(blocking=blocking):
            mask = (
                candidate_mask(space.table, flt, images)
                if flt is not None and flt.restricts_candidates
                else None
            )
            return space.search(queries, k, mask, min_similarity)

    def object_metadata(
        self, space_id: int, object_ids: Sequence[int] | np.ndarray, *, blocking: bool = True
    ) -> ObjectMetadata:
        """What hits show of ``object_ids`` (class, detector score, box, image), from memory.

        Returns :class:`ObjectMetadata` for the ids that are live in space ``space_id`` now, in
        the order given: ``ids`` and ``image_ids`` int64 ``[n]``, ``class_ids`` int32 ``[n]``,
        ``scores`` (detector confidence) float32 ``[n]``, ``x1``, ``y1``, ``x2``, ``y2``
        float32 ``[n]`` (the box in original-image pixels). Removed, unknown or not yet caught
        up ids are absent (an unknown space gives none). Taken under the space's read lock:
        consistent with :meth:`search` as of the same moment; the arrays are copies.
        ``blocking``: as for :meth:`search`.
        """
        ids = np.asarray(object_ids, np.int64)
        space = self._spaces.get(space_id)
        if space is None or ids.size == 0:
            return ObjectMetadata.empty()
        with space.lock.read(blocking=blocking):
            return space.table.metadata(ids)

    def remove(self, space_id: int, object_ids: Iterable[int]) -> int:
        """Make objects unsearchable at once (call after their deletion committed).

        Returns how many were searchable.
        """
        ids = np.fromiter((int(i) for i in object_ids), np.int64)
        if ids.size == 0:
            return 0
        with self._spaces_lock:
            self._pending_removes.setdefault(space_id, set()).update(int(i) for i in ids)
            space = self._spaces.get(space_id)
        if space is None:
            return 0
        with space.lock.write():
            return space.remove(ids)

    # --- rebuild -----------------------------------------------------------------------
    def _rebuild_lock(self, space_id: int) -> threading.Lock:
        with self._spaces_lock:
            return self._rebuild_locks.setdefault(space_id, threading.Lock())

    def rebuild(
        self, space_id: int, *, reason: str = "requested", progress: Progress | None = None
    ) -> None:
        """Build a fresh index of the space from the database and swap it in.

        Searches keep using the current index until the swap. Raises ``KeyError`` for a space
        that does not exist. ``progress(phase, done, total)`` is called as the build goes
        (also shown by :meth:`status` as ``rebuild_progress``).
        """
        with self._rebuild_lock(space_id):
            state = RebuildState(running=True, reason=reason, started_at=time.time())
            self._rebuilds[space_id] = state
            try:
                info = next((i for i in self._space_infos() if i.id == space_id), None)
                if info is None:
                    raise KeyError(f"embedding space {space_id} does not exist")
                log.info("rebuilding the index of space %d (%s)", space_id, reason)
                faiss.omp_set_num_threads(os.cpu_count() or 1)
                self._settled_before_snapshot()  # a fresh settled point for the new cursor
                log_progress = log_build_progress(space_id)

                def report(phase: str, done: int, total: int) -> None:
                    state.phase, state.done, state.total = phase, done, total
                    log_progress(phase, done, total)
                    if progress is not None:
                        progress(phase, done, total)

                fresh = self._build(info, report)
                with self._sync_lock:
                    if self._stop.is_set():
                        log.info("index rebuild of space %d abandoned: shutting down", space_id)
                        return
                    self._catch_up({space_id: fresh})
                    with self._spaces_lock:
                        pending = self._pending_removes.get(space_id)
                        if pending:
                            with fresh.lock.write():
                                fresh.remove(np.fromiter(pending, np.int64, len(pending)))
                        self._spaces[space_id] = fresh
                with fresh.lock.read():
                    write_snapshot(self._index_dir, fresh)
                    fresh.dirty = False
            except Exception as exc:
                state.error = f"{type(exc).__name__}: {exc}"
                raise
            finally:
                state.running = False
                state.finished_at = time.time()

    def _auto_rebuild(self) -> None:
        for space_id, space in list(self._spaces.items()):
            with space.lock.read():
                reason = self._policy.rebuild_reason(
                    space.plan,
                    space.live_count,
                    space.table.stale_count,
                    space.dim,
                    self._settings.index_factory,
                )
            if reason is None:
                continue
            state = self._rebuilds.get(space_id)
            if state is not None and state.running:
                continue
            last = self._auto_attempts.get(space_id)
            if last is not None and time.monotonic() - last < AUTO_REBUILD_BACKOFF_S:
                continue
            self._auto_attempts[space_id] = time.monotonic()

            def run(space_id: int = space_id, reason: str = reason) -> None:
                try:
                    self.rebuild(space_id, reason=reason)
                except Exception:
                    log.exception("automatic rebuild of space %d failed", space_id)

            threading.Thread(target=run, name=f"index-auto-rebuild-{space_id}", daemon=True).start()

    # --- reports -----------------------------------------------------------------------
    def status(self, space_id: int) -> IndexStatus:
        with self._db.read() as session:
            count_db = count_objects(session.connection(), space_id)
        state = self._rebuilds.get(space_id)
        last_rebuild = None
        if state is not None:
            last_rebuild = {
                "reason": state.reason,
                "started_at": _iso(state.started_at),
                "finished_at": _iso(state.finished_at),
                "error": state.error,
            }
        space = self._spaces.get(space_id)
        out = IndexStatus(
            space_id=space_id,
            loaded=space is not None,
            ready=self._ready,
            count_db=count_db,
            lag=count_db,
            last_sync_at=_iso(self._last_sync_at),
            seconds_since_sync=(
                round(time.time() - self._last_sync_at, 3) if self._last_sync_at else None
            ),
            rebuilding=bool(state and state.running),
            last_rebuild=last_rebuild,
        )
        if state is not None and state.running and state.phase is not None:
            out.rebuild_progress = {
                "phase": state.phase,
                "done": state.done,
                "total": state.total,
            }
        if space is None:
            return out
        with space.lock.read():
            described: dict[str, Any] = space.describe()
            out.kind = described["kind"]
            out.factory = described["factory"]
            out.params = described["params"]
            out.count_index = described["count"]
            out.stale_ids = described["stale"]
            out.overflow_ids = described["overflow"]
            out.rejected = len(space.rejected)
            out.lag = count_db - out.count_index
            out.covers = {
                "low": space.cursor.low,
                "open_ids": len(space.cursor.above),
                "tombstone_low": space.cursor.tomb_low,
            }
            out.last_snapshot_at = _iso(space.last_snapshot_at)
            if space.snapshot_cursor is not None:
                out.snapshot_covers = {
                    "low": space.snapshot_cursor.low,
                    "open_ids": len(space.snapshot_cursor.above),
                    "tombstone_low": space.snapshot_cursor.tomb_low,
                }
        return out

    def check(self, space_id: int) -> IndexCheck:
        """Catch up, then compare the index's ids with the database's at that same point.

        The comparison uses the ids of the very snapshot the catch-up applied, so objects
        committed meanwhile are not reported; ids removed with :meth:`remove` after that
        snapshot are not counted as missing.
        """
        with self._sync_lock:
            db_ids = self._catch_up(ids_of=space_id)
            assert db_ids is not None
            self._loaded = self._ready = True
            self._last_sync_at = time.time()
            space = self._spaces.get(space_id)
            empty = np.zeros(0, np.int64)
            main, valid, live, overflow = empty, np.zeros(0, bool), empty, empty
            rejected: dict[int, str] = {}
            if space is not None:
                with space.lock.read():
                    main = space.main_ids()
                    valid = space.table.flag("live", main) & ~space.table.flag("overflow", main)
                    live = space.table.live_ids()
                    overflow = space.overflow_ids()
                    rejected = dict(space.rejected)
            with self._spaces_lock:
                pending = set(self._pending_removes.get(space_id, set()))
        if pending:
            db_ids = db_ids[~np.isin(db_ids, np.fromiter(pending, np.int64, len(pending)))]
        return compare(
            space_id,
            db_ids=db_ids,
            live_ids=live,
            main_ids=main,
            main_valid=valid,
            overflow_ids=overflow,
            rejected=rejected,
        )
