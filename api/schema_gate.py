"""The API's view of the database schema: data routes wait for head, ``/readyz`` says why.

At start-up the gate brings SQLite to head (see :mod:`shared.db.schema`). PostgreSQL is never
migrated by the API: when its schema is behind, the process still starts (so ``/readyz`` can
say what is wrong, naming ``roisearch db upgrade``), data routes answer 503
``schema_not_ready``, and a background thread reads the revision every
:data:`SCHEMA_POLL_S` seconds. Once the schema is at head, the gate opens for good and starts
what needs the tables (the index catch-up, the embedded re-planner): no restart needed after
the upgrade. Queries against missing tables, which answered 500 and logged a traceback every
few seconds, never run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from api.errors import ApiError
from shared.db.database import Database
from shared.db.schema import SchemaState, ensure_schema, schema_state

log = logging.getLogger(__name__)

SCHEMA_POLL_S = 2.0
RETRY_AFTER_S = 5


class SchemaGate:
    """Whether the schema is at head; opens once, then stays open."""

    def __init__(self, db: Database, url: str) -> None:
        self.db = db
        self.url = url
        self.state: SchemaState | None = None
        self._open = threading.Event()
        self._waiter: threading.Thread | None = None

    @property
    def ready(self) -> bool:
        return self._open.is_set()

    def start(self, *, on_ready: Callable[[], None], stopping: threading.Event) -> None:
        """Check (SQLite: upgrade) now; if not at head, wait for it in a background thread.

        ``on_ready`` runs once, when the schema is at head (here, or later in that thread).
        """
        self.state = ensure_schema(self.db, self.url)
        if self.state.at_head:
            self._opened(on_ready)
            return
        log.warning("%s; data routes answer 503 until then", self.state.message)
        self._waiter = threading.Thread(
            target=self._wait, args=(on_ready, stopping), name="schema-wait", daemon=True
        )
        self._waiter.start()

    def _opened(self, on_ready: Callable[[], None]) -> None:
        self._open.set()
        on_ready()

    def _wait(self, on_ready: Callable[[], None], stopping: threading.Event) -> None:
        while not stopping.wait(SCHEMA_POLL_S):
            try:
                self.state = schema_state(self.db)
            except Exception:  # the database may be down for a moment; /readyz says so
                log.warning("reading the schema revision failed (will retry)", exc_info=True)
                continue
            if self.state.at_head:
                log.info("the database schema is at head (%s)", self.state.head)
                self._opened(on_ready)
                return

    def join(self, timeout: float) -> None:
        if self._waiter is not None:
            self._waiter.join(timeout)

    def message(self) -> str:
        return self.state.message if self.state is not None else "schema not checked yet"

    def require(self) -> None:
        """Raise 503 ``schema_not_ready`` unless the schema is at head."""
        if self.ready:
            return
        state = self.state
        raise ApiError(
            503,
            "schema_not_ready",
            self.message(),
            details={"current": state.current, "head": state.head} if state else None,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
