"""Settled horizons: the id up to which no transaction can still commit a new row.

SQLite serialises writers (``BEGIN IMMEDIATE``), so inside one read snapshot every id up to the
highest visible one is settled: the horizon is simply ``max(id)`` read in that snapshot.

PostgreSQL assigns ids from sequences when a row is inserted, and transactions commit in any
order. A *fence* records, at one moment, the sequences' last values ``V`` (read first) and the
virtual transaction ids of every transaction then running in this database (read second,
from ``pg_locks``: each transaction holds a lock on its own virtual xid from its first
statement to its end, even before it has a real xid — ``pg_current_snapshot()`` alone misses a
transaction that has drawn an id with ``nextval`` but not yet written). Every id ``<= V`` was
drawn before the fence by a transaction that is either finished or in that set. Once none of
them is running any more, every such id that will ever exist is committed, so a snapshot
taken *after* that check sees all of them: the fence's ``V`` is settled. One fence is laid per
catch-up; it normally settles at the next one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, text

log = logging.getLogger(__name__)

# Keep at most this many unsettled fences (the oldest and the newest ones): a settled fence
# implies every older one settled, so dropping middle ones only delays, never skips.
MAX_PENDING_FENCES = 32
# Warn when the horizon has been held back this long by one running transaction.
STUCK_WARNING_S = 60.0

_RUNNING_SQL = text(
    """
    SELECT l.virtualxid, l.pid
    FROM pg_locks AS l
    JOIN pg_stat_activity AS a ON a.pid = l.pid
    WHERE l.locktype = 'virtualxid'
      AND l.granted
      AND l.virtualxid = l.virtualtransaction
      AND l.pid <> pg_backend_pid()
      AND (a.datid IS NULL OR a.datid = (SELECT oid FROM pg_database
                                          WHERE datname = current_database()))
      AND a.backend_type IS DISTINCT FROM 'autovacuum worker'
    """
)


@dataclass(frozen=True)
class Cut:
    """Settled ids: every object id ``<= objects`` and tombstone id ``<= tombstones`` that will
    ever exist is committed. ``exact``: read in the applied snapshot itself (SQLite)."""

    objects: int
    tombstones: int
    exact: bool = False


@dataclass
class Fence:
    objects: int
    tombstones: int
    running: frozenset[str]
    pids: dict[str, int]
    laid_at: float


class PgHorizon:
    """Fences over ``objects`` and ``object_tombstones`` on PostgreSQL (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Whole advances are serialised: a running-set read must never be checked against a
        # fence laid after it was read.
        self._advance_lock = threading.Lock()
        self._pending: deque[Fence] = deque()
        self._settled = Cut(0, 0)
        self._exempt: set[int] = set()
        self._sequences: tuple[str, str] | None = None
        self._warned_at = 0.0

    @property
    def settled(self) -> Cut:
        with self._lock:
            return self._settled

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    @contextmanager
    def exempt(self, conn: Connection) -> Iterator[None]:
        """Do not wait for ``conn``'s transaction: it is read-only, it cannot add rows."""
        pid = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
        with self._lock:
            self._exempt.add(pid)
        try:
            yield
        finally:
            with self._lock:
                self._exempt.discard(pid)

    def _sequence_names(self, conn: Connection) -> tuple[str, str]:
        if self._sequences is None:
            row = conn.execute(
                text(
                    "SELECT pg_get_serial_sequence('objects', 'id'), "
                    "pg_get_serial_sequence('object_tombstones', 'id')"
                )
            ).one()
            if row[0] is None or row[1] is None:
                raise RuntimeError("objects/object_tombstones ids are not sequence-backed")
            for name in (str(row[0]), str(row[1])):
                cache = conn.execute(
                    text("SELECT seqcache FROM pg_sequence WHERE seqrelid = CAST(:s AS regclass)"),
                    {"s": name},
                ).scalar_one()
                if int(cache) != 1:
                    # Cached values are handed out after later ones: "<= last_value" would no
                    # longer mean "drawn before the fence".
                    raise RuntimeError(
                        f"sequence {name} has CACHE {cache}; the index catch-up needs CACHE 1 "
                        f"(ALTER SEQUENCE {name} CACHE 1)"
                    )
            self._sequences = (str(row[0]), str(row[1]))
        return self._sequences

    def _last_value(self, conn: Connection, sequence: str) -> int:
        # The name comes from pg_get_serial_sequence (already quoted where needed).
        row = conn.execute(text(f"SELECT last_value, is_called FROM {sequence}")).one()
        return int(row[0]) if row[1] else int(row[0]) - 1

    def advance(self, conn: Connection) -> Cut:
        """Settle what can be settled and lay a new fence; call *before* the data snapshot.

        ``conn`` must not be inside the snapshot that is then read (use its own short
        transaction): the settle check has to happen before that snapshot is taken.
        """
        with self._advance_lock:
            return self._advance(conn)

    def _advance(self, conn: Connection) -> Cut:
        objects_seq, tombstones_seq = self._sequence_names(conn)
        # Sequences first, running transactions second: see the module docstring.
        v_objects = self._last_value(conn, objects_seq)
        v_tombstones = self._last_value(conn, tombstones_seq)
        rows = conn.execute(_RUNNING_SQL).all()
        now = time.monotonic()
        with self._lock:
            running = {str(vxid): int(pid) for vxid, pid in rows if int(pid) not in self._exempt}
            names = frozenset(running)
            settled_at = None
            for position in range(len(self._pending) - 1, -1, -1):
                if not (self._pending[position].running & names):
                    settled_at = position
                    break
            if settled_at is not None:
                fence = self._pending[settled_at]
                self._settled = Cut(
                    max(self._settled.objects, fence.objects),
                    max(self._settled.tombstones, fence.tombstones),
                )
                for _ in range(settled_at + 1):
                    self._pending.popleft()
            self._pending.append(Fence(v_objects, v_tombstones, names, running, now))
            if len(self._pending) > MAX_PENDING_FENCES:
                oldest = self._pending.popleft()
                self._pending.popleft()
                self._pending.appendleft(oldest)
            oldest = self._pending[0]
            if now - oldest.laid_at > STUCK_WARNING_S and now - self._warned_at > STUCK_WARNING_S:
                self._warned_at = now
                blockers = sorted({oldest.pids[n] for n in oldest.running & names})
                log.warning(
                    "index catch-up: ids above %d stay open while transaction(s) of backend "
                    "pid(s) %s, running for over %.0f s, may still commit; later objects are "
                    "indexed meanwhile",
                    self._settled.objects,
                    blockers[:10],
                    now - oldest.laid_at,
                )
            return self._settled


def sqlite_cut(conn: Connection) -> Cut:
    """Inside the read snapshot: the highest object and tombstone ids (SQLite only)."""
    row = conn.execute(
        text("SELECT (SELECT max(id) FROM objects), (SELECT max(id) FROM object_tombstones)")
    ).one()
    return Cut(int(row[0] or 0), int(row[1] or 0), exact=True)
