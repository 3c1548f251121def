"""Building one space's index from the database, in the tier the policy picks.

The compressed tier (``ivfpq``) streams keyset pages into its vector file and trains on a
sample (:mod:`shared.index.compressed_build`); the in-memory tiers read every vector into one
array (their index holds them all anyway). A factory override that cannot be used falls back
to the automatic choice, with an error in the log.
"""

from __future__ import annotations

import logging
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from shared.db.database import Database
from shared.index.catchup import (
    SpaceInfo,
    count_objects,
    read_space,
    space_cursor,
    stream_space,
)
from shared.index.compressed_build import Progress, load_pages, train_and_add
from shared.index.cursor import Cursor
from shared.index.horizon import Cut, PgHorizon, sqlite_cut
from shared.index.policy import IndexPlan, IndexPolicy
from shared.index.rows import ObjectRows
from shared.index.space_index import SpaceIndex
from shared.index.vector_store import VectorStore, store_path

log = logging.getLogger(__name__)


class SpaceBuilder:
    def __init__(
        self,
        db: Database,
        horizon: PgHorizon | None,
        policy: IndexPolicy,
        override: str | None,
        index_dir: Path,
    ) -> None:
        self._db = db
        self._horizon = horizon
        self._policy = policy
        self._override = override
        self._index_dir = index_dir

    def build(
        self, info: SpaceInfo, settled: Cut | None, progress: Progress | None = None
    ) -> SpaceIndex:
        """A new index of ``info`` from every object in the database (no lock needed).

        ``settled``: PostgreSQL's settled cut (None on SQLite: read in the snapshot). The
        compressed tier streams the rows (a page at a time into its vector file); the others
        hold every vector in RAM anyway and read them into one array.
        """
        started = time.monotonic()
        report = progress or log_build_progress(info.id)
        streamed: SpaceIndex | None = None
        with self._db.read_connection() as conn:
            exempt: AbstractContextManager[object] = (
                self._horizon.exempt(conn) if self._horizon is not None else nullcontext()
            )
            with exempt:
                cut = settled if settled is not None else sqlite_cut(conn)
                total = count_objects(conn, info.id)
                plan = self._choose(info.id, total, info.dim)
                if plan.kind == "ivfpq":
                    streamed = SpaceIndex.empty(
                        info.id, info.identity, info.dim, plan, store=self._store(info)
                    )
                    read = load_pages(streamed, stream_space(conn, info), total, report)
                    streamed.cursor = space_cursor(conn, info.id, cut, read, ())
                else:
                    rows, cursor = read_space(conn, info, cut, report)
        if streamed is not None:
            train_and_add(streamed, progress=report)
            space = streamed
        else:
            space = self._build_in_memory(info, plan, rows, cursor)
        space.dirty = True
        log.info(
            "index of space %d built: %d objects, %s in %.1f s",
            info.id,
            space.live_count,
            space.plan.factory,
            time.monotonic() - started,
        )
        return space

    def _choose(self, space_id: int, n: int, dim: int) -> IndexPlan:
        override = self._override
        try:
            return self._policy.choose(n, dim, override)
        except ValueError as exc:
            if not override:
                raise
            self._override_unusable(space_id, exc)
            return self._policy.choose(n, dim)

    @staticmethod
    def _override_unusable(space_id: int, exc: ValueError) -> None:
        log.error(
            "space %d: the index factory override cannot be used (%s); using the automatic "
            "choice until it can",
            space_id,
            exc,
        )

    def _store(self, info: SpaceInfo) -> VectorStore:
        return VectorStore(store_path(self._index_dir, info.id), info.dim)

    def _build_in_memory(
        self, info: SpaceInfo, plan: IndexPlan, rows: ObjectRows, cursor: Cursor
    ) -> SpaceIndex:
        if plan.override:
            try:
                return SpaceIndex.build(info.id, info.identity, info.dim, plan, rows, cursor)
            except ValueError as exc:
                self._override_unusable(info.id, exc)
                plan = self._policy.choose(len(rows), info.dim)
        store = self._store(info) if plan.kind == "ivfpq" else None
        return SpaceIndex.build(info.id, info.identity, info.dim, plan, rows, cursor, store=store)


def log_build_progress(space_id: int) -> Progress:
    """Progress to the log: a line per phase and per tenth of the objects."""
    last: dict[str, int] = {}

    def report(phase: str, done: int, total: int) -> None:
        step = 10 * done // max(total, 1)
        if last.get(phase) != step:
            last[phase] = step
            log.info("space %d: index build %s %d/%d", space_id, phase, done, total)

    return report
