"""Who drives an ingestion right now: a lease on its row, so that an orphan can be taken over.

While a process plans an ingestion (the API, ``roisearch ingest``) or runs its chunks in
process (embedded ``roisearch ingest``; the embedded API's in-process queue, from the moment
they are queued), it holds the ingestion's lease: its identity in
``ingestions.lease_owner``, and ``updated_at`` renewed every :data:`HEARTBEAT_S` by a thread
(a thread, not the work loop: enumerating a 1M-member zip or staging one large tar member takes
longer than any sensible heartbeat interval, and must not look like death).

Another process may take an ingestion over only when its driver is gone:

* no driver: the lease was released (the run ended, by an error too) while the ingestion is
  still unfinished: at once;
* a driver on this host that no longer exists (pid gone, or reused by a process started at
  another time): known at once, so a re-run right after a crash or a full disk resumes the
  ingestion instead of starting another;
* a driver elsewhere (or unknown): no heartbeat for :data:`STALE_S`.

A driver that is alive on this host is never taken over, whatever its heartbeat says.
Taking over by mistake (a driver in another pid namespace with the same host name) costs only
duplicated work: planning and chunks are idempotent.

Ingestions whose chunks are on the RQ queue have no lease once planned: the reconciler
recovers their chunks from the items themselves.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from shared.db.database import Database
from shared.db.models import Ingestion

log = logging.getLogger(__name__)

HEARTBEAT_S = 5.0
# A driver on another host is presumed dead after this long without a heartbeat (12 missed
# beats: a database failover or a stalled disk must not make two drivers).
STALE_S = 60.0


@cache
def _host() -> str:
    # The boot id tells two boots of one machine apart (a pid from before a reboot means
    # nothing now); containers share it but not, by default, their host name.
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = ""
    return f"{socket.gethostname()}/{boot}"


def _start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot, Linux), or None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22; the command name (field 2) may contain spaces and parentheses.
    return stat.rsplit(")", 1)[1].split()[19]


def owner_id(pid: int | None = None) -> str:
    """``host:pid:start`` of a process (this one by default)."""
    pid = os.getpid() if pid is None else pid
    return f"{_host()}:{pid}:{_start_time(pid) or ''}"


def owner_alive(owner: str) -> bool | None:
    """Whether the lease holder ``owner`` still runs; None when this host cannot tell."""
    host, sep, rest = owner.partition(":")
    pid_text, _, start = rest.partition(":")
    if not sep or host != _host() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    if Path("/proc").is_dir():
        now = _start_time(pid)
        # Gone, or the pid now belongs to a process started at another time.
        return now is not None and (not start or now == start)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def abandoned(
    owner: str | None, heartbeat: datetime | None, now: datetime, stale_s: float = STALE_S
) -> bool:
    """Whether an ingestion with this lease may be taken over (see the module docstring)."""
    if owner is None:
        return True
    if owner == owner_id():
        return False
    alive = owner_alive(owner)
    if alive is not None:
        return not alive
    beat = _aware(heartbeat)
    return beat is None or beat < _aware_now(now) - timedelta(seconds=stale_s)


def _aware(moment: datetime | None) -> datetime | None:
    # SQLite returns naive datetimes, stored in UTC.
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _aware_now(now: datetime) -> datetime:
    aware = _aware(now)
    assert aware is not None
    return aware


@dataclass(frozen=True)
class Orphan:
    """An unfinished ingestion whose driver is gone."""

    id: int
    status: str
    source: str
    options: dict[str, Any]


def find_abandoned(
    db: Database, statuses: Collection[str], *, stale_s: float = STALE_S
) -> list[Orphan]:
    """Ingestions in ``statuses`` whose lease holder is gone, oldest first."""
    with db.read() as session:
        # The database's clock on both sides of the comparison: drivers on other hosts beat
        # with the database's now() too, so clock skew between hosts does not matter.
        now = session.scalar(select(func.now()))
        rows = session.execute(
            select(
                Ingestion.id,
                Ingestion.status,
                Ingestion.source,
                Ingestion.options,
                Ingestion.lease_owner,
                Ingestion.updated_at,
            )
            .where(Ingestion.status.in_(list(statuses)))
            .order_by(Ingestion.id)
        ).all()
    assert isinstance(now, datetime)
    return [
        Orphan(int(r.id), str(r.status), str(r.source), dict(r.options or {}))
        for r in rows
        if abandoned(r.lease_owner, r.updated_at, now, stale_s)
    ]


def claim(
    db: Database, ingestion_id: int, statuses: Collection[str], *, stale_s: float = STALE_S
) -> bool:
    """Take the lease of an abandoned ingestion still in ``statuses``; False if not ours.

    Check and write in one write transaction (row lock on PostgreSQL, the write lock on
    SQLite), so two processes racing for the same orphan cannot both win.
    """
    me = owner_id()
    with db.begin() as session:
        now = session.scalar(select(func.now()))
        row = session.execute(
            select(Ingestion.status, Ingestion.lease_owner, Ingestion.updated_at)
            .where(Ingestion.id == ingestion_id)
            .with_for_update()
        ).one_or_none()
        assert now is None or isinstance(now, datetime)
        if row is None or row.status not in statuses or now is None:
            return False
        if row.lease_owner != me and not abandoned(row.lease_owner, row.updated_at, now, stale_s):
            return False
        session.execute(
            update(Ingestion)
            .where(Ingestion.id == ingestion_id)
            .values(lease_owner=me, updated_at=func.now())
        )
    return True


class _Held:
    def __init__(self, db: Database, ingestion_id: int) -> None:
        self.db = db
        self.ingestion_id = ingestion_id
        self.count = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"lease-{ingestion_id}", daemon=True)

    def _beat(self) -> None:
        lost = False
        while not self.stop.wait(HEARTBEAT_S):
            try:
                renewed = _renew(self.db, self.ingestion_id)
            except Exception as exc:  # a missed beat must not end the work; the next may pass
                # Info, one line: the work itself hits the same database error and reports it
                # (a CLI on a full disk must end with one clear line, not a traceback).
                log.info("heartbeat of ingestion %d failed: %s", self.ingestion_id, _line(exc))
                continue
            if not renewed and not lost:
                lost = True
                # Someone took it over believing us dead; both finish the same idempotent work.
                log.warning("ingestion %d was taken over by another process", self.ingestion_id)


_held: dict[int, _Held] = {}
_held_lock = threading.Lock()


def _renew(db: Database, ingestion_id: int) -> bool:
    with db.begin() as session:
        result = session.execute(
            update(Ingestion)
            .where(Ingestion.id == ingestion_id, Ingestion.lease_owner == owner_id())
            .values(updated_at=func.now())
        )
    return bool(getattr(result, "rowcount", 0))


@contextmanager
def lease(db: Database, ingestion_id: int) -> Iterator[None]:
    """Hold the ingestion's lease (this process drives it) for the duration of the block.

    Unconditional: whoever calls this has decided to drive the ingestion (it created it, or
    :func:`claim` gave it the orphan). Re-entrant within a process (resuming an embedded run
    plans inside the run); the lease is released when the outermost block ends, best effort —
    on a full disk the release may fail too, and the dead owner is recognised anyway.
    """
    with _held_lock:
        held = _held.get(ingestion_id)
        first = held is None
        if held is None:
            held = _held[ingestion_id] = _Held(db, ingestion_id)
        held.count += 1
    try:
        if first:
            with db.begin() as session:
                session.execute(
                    update(Ingestion)
                    .where(Ingestion.id == ingestion_id)
                    .values(lease_owner=owner_id(), updated_at=func.now())
                )
            held.thread.start()
        yield
    finally:
        with _held_lock:
            held.count -= 1
            last = held.count == 0
            if last:
                del _held[ingestion_id]
        if last:
            held.stop.set()
            if held.thread.is_alive():
                # A beat stuck on a database lock must not hold up the end of the work.
                held.thread.join(timeout=HEARTBEAT_S)
            with _held_lock:
                # Another thread of this process may have leased it again meanwhile: the
                # lease row names the process, so releasing now would release theirs.
                if ingestion_id not in _held:
                    _release(db, ingestion_id)


def _release(db: Database, ingestion_id: int) -> None:
    try:
        with db.begin() as session:
            session.execute(
                update(Ingestion)
                .where(Ingestion.id == ingestion_id, Ingestion.lease_owner == owner_id())
                .values(lease_owner=None)
            )
    except Exception as exc:
        # Harmless: a dead owner is recognised as such. Quiet, for the reason given in _beat.
        log.info("could not release the lease of ingestion %d: %s", ingestion_id, _line(exc))


def _line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
