"""InProcessJobQueue.close: queued chunks are dropped (their holds released), the running one
finishes, and nothing runs (or is queued) after close returns."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from shared.queueing import CHUNK_JOB, REPORT_JOB, InProcessJobQueue


def test_close_drops_queued_chunks_and_waits_for_the_running_one() -> None:
    started, finish = threading.Event(), threading.Event()
    ran: list[int] = []
    holds: list[str] = []

    def run_chunk(_ingestion_id: int, chunk: int) -> None:
        ran.append(chunk)
        started.set()
        finish.wait(10)

    @contextmanager
    def hold(ingestion_id: int) -> Iterator[None]:
        holds.append(f"take {ingestion_id}")
        try:
            yield
        finally:
            holds.append(f"release {ingestion_id}")

    jobs = InProcessJobQueue({CHUNK_JOB: run_chunk}, hold=hold)
    assert jobs.enqueue_chunks(7, [0, 1, 2]) == 3
    assert started.wait(10)
    closer = threading.Thread(target=jobs.close)
    closer.start()
    closer.join(0.3)
    assert closer.is_alive()  # the chunk in progress is waited for
    finish.set()
    closer.join(10)
    assert not closer.is_alive()
    assert ran == [0]  # the queued chunks were dropped, not run after close
    assert jobs.known_chunks() == set() and jobs.depth() == 0
    # every hold taken (the enqueue's own and one per chunk) was let go
    assert holds.count("take 7") == holds.count("release 7") == 4


def test_close_gives_up_waiting_after_its_timeout() -> None:
    finish = threading.Event()
    started = threading.Event()

    def stuck(_ingestion_id: int, _chunk: int) -> None:
        started.set()
        finish.wait(10)

    jobs = InProcessJobQueue({CHUNK_JOB: stuck})
    jobs.enqueue_chunks(1, [0])
    assert started.wait(10)
    began = time.monotonic()
    jobs.close(timeout=0.1)  # returns although the chunk is still running
    assert time.monotonic() - began < 5
    finish.set()


def test_nothing_is_queued_after_close() -> None:
    # A re-planning pass that outlives the API's shutdown must not start the thread again.
    ran: list[tuple[str, int]] = []
    holds: list[int] = []

    @contextmanager
    def hold(ingestion_id: int) -> Iterator[None]:
        holds.append(ingestion_id)
        yield

    jobs = InProcessJobQueue(
        {
            CHUNK_JOB: lambda i, c: ran.append(("chunk", c)),
            REPORT_JOB: lambda r: ran.append(("report", r)),
        },
        hold=hold,
    )
    jobs.close()
    assert jobs.enqueue_chunks(3, [0, 1]) == 0
    jobs.enqueue_report(5)
    time.sleep(0.2)
    assert ran == [] and holds == []  # no lease taken for chunks that will not run
    assert jobs.known_chunks() == set() and jobs.depth() == 0
