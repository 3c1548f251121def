"""A readers-writer lock: many concurrent searches, one mutation at a time.

FAISS CPU indexes crash the process when mutated during a search (measured: 8/8 segfaults),
so every ``add``/``remove_ids``/swap holds the write side and every search the read side.
Writers are preferred: once a writer waits, new readers queue behind it, so a steady stream of
searches cannot starve the catch-up.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class LockBusyError(RuntimeError):
    """A non-blocking acquisition found the lock taken."""


class RWLock:
    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0

    @contextmanager
    def read(self, *, blocking: bool = True) -> Iterator[None]:
        """Hold the read side. ``blocking=False``: raise :class:`LockBusyError` at once instead of
        waiting when a writer holds or awaits the lock."""
        with self._cond:
            while self._writer or self._waiting_writers:
                if not blocking:
                    raise LockBusyError("a writer holds or awaits the lock")
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if self._readers == 0:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._waiting_writers += 1
            try:
                while self._writer or self._readers:
                    self._cond.wait()
            finally:
                self._waiting_writers -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()
