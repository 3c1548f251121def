"""Job queues: RQ on Redis, or in-process for embedded mode — the same job logic either way.

The queues know jobs by name only, and never import what the jobs do: RQ jobs are enqueued by
dotted path (``worker.jobs.process_chunk``, so the API never imports the worker), and an
in-process queue looks the same names up in the handlers its entry point registered
(``shared.jobs.make_queue``). Job ids carry a generation suffix: re-enqueueing never reuses
an id whose old job hash might still exist (engineering notes §4). RQ 2 accepts only letters,
digits, ``_`` and ``-`` in job ids, hence the dashes.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger(__name__)

CHUNK_JOB = "worker.jobs.process_chunk"
REPORT_JOB = "worker.jobs.run_report"
CHUNK_ID_PREFIX = "roisearch-chunk"
RETRIES = 3


def chunk_job_id(ingestion_id: int, chunk: int, generation: int) -> str:
    return f"{CHUNK_ID_PREFIX}-{ingestion_id}-{chunk}-{generation}"


def parse_chunk_job_id(job_id: str) -> tuple[int, int] | None:
    parts = job_id.split("-")
    if len(parts) != 5 or f"{parts[0]}-{parts[1]}" != CHUNK_ID_PREFIX:
        return None
    try:
        return int(parts[2]), int(parts[3])
    except ValueError:
        return None


class QueueSettings(Protocol):
    """What an RQ queue needs of the settings (``shared.settings.Settings`` has it)."""

    @property
    def redis_url(self) -> str | None: ...

    @property
    def queue_name(self) -> str: ...

    @property
    def job_timeout_s(self) -> int: ...


class JobQueue(Protocol):
    def enqueue_chunks(self, ingestion_id: int, chunks: Iterable[int]) -> int: ...

    def enqueue_report(self, report_id: int) -> None: ...

    def known_chunks(self) -> set[tuple[int, int]] | None:
        """(ingestion, chunk) pairs queued or running; None if the queue cannot tell."""
        ...

    def depth(self) -> int: ...


class RQJobQueue:
    """Enqueue on RQ. Connection explicit; nothing is pickled but ids."""

    def __init__(self, redis_url: str, queue_name: str, job_timeout_s: int) -> None:
        from redis import Redis
        from rq import Queue

        self.connection = Redis.from_url(redis_url)
        self.queue = Queue(queue_name, connection=self.connection)
        self.job_timeout_s = job_timeout_s

    @classmethod
    def from_settings(cls, settings: QueueSettings) -> RQJobQueue:
        if settings.redis_url is None:
            raise ValueError("RQJobQueue needs ROISEARCH_REDIS_URL")
        return cls(settings.redis_url, settings.queue_name, settings.job_timeout_s)

    def enqueue_chunks(self, ingestion_id: int, chunks: Iterable[int]) -> int:
        from rq import Queue, Retry

        generation = time.time_ns()
        jobs = [
            Queue.prepare_data(
                CHUNK_JOB,
                args=(ingestion_id, chunk),
                job_id=chunk_job_id(ingestion_id, chunk, generation),
                timeout=self.job_timeout_s,
                # No retry interval: RQ turns an interval into a *scheduled* job that only a
                # scheduler process moves back to the queue, and workers run without one
                # (it forks, and the model is already loaded). The reconciler is the slow retry.
                retry=Retry(max=RETRIES),
                result_ttl=3600,
                failure_ttl=7 * 86400,
            )
            for chunk in chunks
        ]
        if jobs:
            self.queue.enqueue_many(jobs)
        return len(jobs)

    def enqueue_report(self, report_id: int) -> None:
        from rq import Retry

        self.queue.enqueue(
            REPORT_JOB,
            args=(report_id,),
            job_id=f"roisearch-report-{report_id}-{time.time_ns()}",
            job_timeout=self.job_timeout_s * 4,
            retry=Retry(max=1),
        )

    def known_chunks(self) -> set[tuple[int, int]]:
        from rq.registry import DeferredJobRegistry, ScheduledJobRegistry, StartedJobRegistry

        ids = list(self.queue.get_job_ids())
        for registry in (
            StartedJobRegistry(queue=self.queue),
            ScheduledJobRegistry(queue=self.queue),
            DeferredJobRegistry(queue=self.queue),
        ):
            ids.extend(registry.get_job_ids())
        known: set[tuple[int, int]] = set()
        for job_id in ids:
            parsed = parse_chunk_job_id(job_id)
            if parsed:
                known.add(parsed)
        return known

    def depth(self) -> int:
        return int(self.queue.count)

    def expire_abandoned(self) -> None:
        """Hand back the started jobs whose worker stopped beating (RQ retries or fails them);
        RQ itself does it only between dequeues (the worker's janitor calls this instead)."""
        from rq.registry import StartedJobRegistry

        StartedJobRegistry(queue=self.queue).cleanup()


# What an in-process queue runs for each job name: the job's function, called with the ids
# RQ would pass (chunk: ingestion id, chunk; report: report id).
Handlers = Mapping[str, Callable[..., object]]


@dataclass(frozen=True)
class _Task:
    job: str
    args: tuple[int, ...]
    # Lets go of what the task held (its ingestion's lease) once it ran.
    release: Callable[[], object] = field(default=lambda: None, compare=False)

    @property
    def key(self) -> tuple[int, int]:
        """(ingestion, chunk) for a chunk task; as ``known_chunks`` reports it."""
        return self.args[0], self.args[-1]


Hold = Callable[[int], AbstractContextManager[object]]


# How long closing waits for the chunk in progress (a chunk of the default size takes seconds
# on a CPU; a stuck one must not hang the shutdown for ever).
CLOSE_TIMEOUT_S = 120.0


class InProcessJobQueue:
    """Embedded mode: one background thread runs the job logic in this process, in order.

    ``handlers`` maps job names (:data:`CHUNK_JOB`, :data:`REPORT_JOB`) to the functions that
    run them; a job without a handler is logged and dropped. ``hold(ingestion_id)`` (the
    ingestion's lease, see ``shared.jobs.make_queue``) is held from the moment a chunk is
    queued until it has run: the ingestion is this process's to finish until then, and nobody
    else's to take over; once its last chunk has run (or failed), it is released.
    """

    def __init__(self, handlers: Handlers, *, hold: Hold | None = None) -> None:
        self._handlers = dict(handlers)
        self._hold: Hold = hold or (lambda _: nullcontext())
        self._tasks: queue.Queue[_Task | None] = queue.Queue()
        self._pending: set[tuple[int, int]] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="roisearch-jobs", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            task = self._tasks.get()
            if task is None:
                return
            handler = self._handlers.get(task.job)
            try:
                if handler is None:
                    log.error("in-process job %s%s: no handler registered", task.job, task.args)
                else:
                    handler(*task.args)
            except Exception:
                log.exception("in-process job %s%s failed", task.job, task.args)
            finally:
                with self._lock:
                    self._pending.discard(task.key)
                try:
                    # Outside the lock: the last release of a lease writes to the database.
                    task.release()
                except Exception:
                    log.exception("in-process job %s%s: release failed", task.job, task.args)
                self._tasks.task_done()

    def enqueue_chunks(self, ingestion_id: int, chunks: Iterable[int]) -> int:
        """Queue the chunks not queued already; returns how many. After :meth:`close`,
        none: they stay pending for whoever drives the ingestion next."""
        n = 0
        if self._refused("chunks of ingestion", ingestion_id):
            return 0
        # Taken before any chunk is queued, so that none can run and release it first; the
        # chunks' own holds, taken under the lock, are then re-entries (no database write).
        with self._hold(ingestion_id), self._lock:
            if self._closed:  # closed while the hold was being taken
                return 0
            for chunk in chunks:
                if (ingestion_id, chunk) in self._pending:
                    continue
                held = ExitStack()
                held.enter_context(self._hold(ingestion_id))
                self._pending.add((ingestion_id, chunk))
                self._tasks.put(_Task(CHUNK_JOB, (ingestion_id, chunk), held.close))
                n += 1
            # Under the lock: a close() cannot fall between queueing and starting the thread.
            self._ensure_thread()
        return n

    def enqueue_report(self, report_id: int) -> None:
        with self._lock:
            if self._refused("report", report_id):
                return
            self._tasks.put(_Task(REPORT_JOB, (report_id,)))
            self._ensure_thread()

    def _refused(self, what: str, ident: int) -> bool:
        # A closed queue must not start its thread again: a caller that outlived the close
        # (a re-planning pass cut short at shutdown) would run jobs for an owner that is gone.
        if self._closed:
            log.warning("in-process queue closed: %s %d not queued", what, ident)
        return self._closed

    def known_chunks(self) -> set[tuple[int, int]]:
        with self._lock:
            return set(self._pending)

    def depth(self) -> int:
        return self._tasks.qsize()

    def join(self) -> None:
        """Wait until every queued task ran (tests, CLI)."""
        self._tasks.join()

    def close(self, timeout: float | None = CLOSE_TIMEOUT_S) -> None:
        """Stop: drop the tasks not started, let the one running finish, and wait for it (at
        most ``timeout`` seconds).

        Dropped chunks stay pending in the database and their leases are released, so that
        whoever drives the ingestion next (this process restarted:
        ``IngestionSupervisor.requeue_orphans``) queues them again. Without the wait, the
        thread went on running queued chunks after its owner had closed (an API writing after
        its shutdown). Nothing is queued after the close.
        """
        with self._lock:
            self._closed = True
        dropped: list[_Task] = []
        while True:
            try:
                task = self._tasks.get_nowait()
            except queue.Empty:
                break
            if task is not None:
                dropped.append(task)
            self._tasks.task_done()
        with self._lock:
            for task in dropped:
                self._pending.discard(task.key)
        for task in dropped:
            try:
                task.release()
            except Exception:
                log.exception("in-process job %s%s: release failed", task.job, task.args)
        thread = self._thread
        if thread is None or not thread.is_alive():
            return  # no thread to stop (none is started once closed)
        self._tasks.put(None)
        if thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("the in-process job still running did not finish in %s s", timeout)
