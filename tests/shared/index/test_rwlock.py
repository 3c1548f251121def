"""The readers-writer lock: readers share, a writer is alone, a waiting writer goes first."""

from __future__ import annotations

import threading

import pytest

from shared.index.rwlock import LockBusyError, RWLock


def test_writer_excludes_readers_and_is_not_starved() -> None:
    lock = RWLock()
    order: list[str] = []
    reader_in = threading.Event()
    release_reader = threading.Event()

    def long_reader() -> None:
        with lock.read():
            reader_in.set()
            release_reader.wait()
            order.append("reader1-out")

    def writer() -> None:
        with lock.write():
            order.append("writer")

    def late_reader() -> None:
        with lock.read():
            order.append("reader2")

    r1 = threading.Thread(target=long_reader)
    r1.start()
    reader_in.wait()
    with lock.read():  # readers share while no writer waits
        order.append("shared")
    w = threading.Thread(target=writer)
    w.start()
    while not lock._waiting_writers:
        threading.Event().wait(0.001)
    r2 = threading.Thread(target=late_reader)
    r2.start()
    release_reader.set()
    for t in (r1, w, r2):
        t.join(timeout=10)
    assert order == ["shared", "reader1-out", "writer", "reader2"]


def test_a_non_blocking_reader_is_refused_while_a_writer_holds_or_awaits_the_lock() -> None:
    lock = RWLock()
    with lock.read(blocking=False):  # free: taken at once
        pass
    holding = threading.Event()
    release = threading.Event()

    def writer() -> None:
        with lock.write():
            holding.set()
            release.wait()

    w = threading.Thread(target=writer)
    w.start()
    holding.wait()
    with pytest.raises(LockBusyError), lock.read(blocking=False):
        pass
    release.set()
    w.join(timeout=10)
    with lock.read(blocking=False):  # free again
        pass
    # A waiting writer refuses new non-blocking readers too (it goes first).
    reading = threading.Event()
    done = threading.Event()

    def reader() -> None:
        with lock.read():
            reading.set()
            done.wait()

    r = threading.Thread(target=reader)
    r.start()
    reading.wait()

    def waiting_writer() -> None:
        with lock.write():
            pass

    w = threading.Thread(target=waiting_writer)
    w.start()
    while not lock._waiting_writers:
        threading.Event().wait(0.001)
    with pytest.raises(LockBusyError), lock.read(blocking=False):
        pass
    done.set()
    for t in (r, w):
        t.join(timeout=10)
