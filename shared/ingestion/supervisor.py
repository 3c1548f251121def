"""The ingestion supervisor: who drives an ingestion from one state to the next, and who takes
it over when its driver is gone.

An ingestion is created ``planning``, planned into items (``running``, or ``done``/``failed``
when nothing is left to run), its chunks run (queued, or in this process), and the last chunk
marks it ``done``. Every process that drives ingestions — the RQ worker, the API (embedded
or not), ``roisearch ingest`` — does it through one :class:`IngestionSupervisor`, with one
verb per transition:

* :meth:`start`: new → planned, nothing processed (``roisearch ingest`` with RQ, tests);
* :meth:`submit`: new → planned → queued, leased throughout (the API);
* :meth:`start_embedded`: new, or this source's interrupted ingestion → planned, leased (the
  embedded CLI), then :meth:`run`: its chunks run in this process, leased;
* :meth:`finish_interrupted`: embedded, driver gone → claimed → run here (the embedded CLI);
* :meth:`replan_orphans`: ``planning``, planner gone → claimed → planned → queued (the
  worker, the embedded API);
* :meth:`requeue_orphans`: ``running``, driver gone → claimed → queued, or ``done`` when
  nothing is left (the embedded API);
* :meth:`reconcile`: pending chunks the queue lost → queued; ``running`` with nothing pending
  → ``done`` (the worker's janitor).

:meth:`recover` is one pass of the takeovers a process runs in the background (the worker's
and the embedded API's re-planner); :meth:`keep_recovering` runs it until stopped.

Leases (``shared.ingestion.leases``) say who drives an ingestion now; only one whose driver
is gone is claimed. RQ ingestions hold no lease once planned: their chunks are the
reconciler's. An in-process queue (embedded mode) leases the ingestions it has chunks of,
which is why only there the ``running`` orphans are queued again (:meth:`requeue_orphans`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shared.db.database import Database
from shared.db.models import Ingestion, IngestionStatus
from shared.ingestion.config import IngestionConfig
from shared.ingestion.leases import STALE_S, Orphan, claim, find_abandoned, lease
from shared.ingestion.pipeline import ChunkSummary, finish_if_complete, process_chunk
from shared.ingestion.planning import (
    PlanSummary,
    create_ingestion,
    pending_chunks,
    plan_ingestion,
    plan_summary,
    resume_plan,
)
from shared.ingestion.reconciler import GRACE_S, finish_settled, lost_chunks
from shared.ingestion.uploads import remove_upload_if_finished
from shared.model_provider import ModelProvider
from shared.queueing import JobQueue

ChunkCallback = Callable[[PlanSummary, ChunkSummary], None]
log = logging.getLogger(__name__)

# options["runner"] of ingestions whose chunks run in the process that started them.
EMBEDDED = "embedded"
UNFINISHED = (IngestionStatus.PLANNING, IngestionStatus.RUNNING)


class IngestionSupervisor:
    """Drives ingestions through their states for one process (see the module docstring).

    ``queue`` is where chunks go (RQ, or the in-process queue of an embedded API); None for an
    embedded ``roisearch ingest``, which runs them itself (:meth:`run`). Orphans are claimed
    once their driver is gone: on this host at once, elsewhere after ``stale_s`` without a
    heartbeat.
    """

    def __init__(
        self,
        db: Database,
        config: IngestionConfig,
        queue: JobQueue | None = None,
        *,
        stale_s: float = STALE_S,
    ) -> None:
        self.db = db
        self.config = config
        self._queue = queue
        self.stale_s = stale_s

    @property
    def queue(self) -> JobQueue:
        if self._queue is None:
            raise RuntimeError("this ingestion supervisor has no queue: run the chunks in process")
        return self._queue

    # --- new ingestions ---------------------------------------------------------------------

    def start(
        self, source: Path, *, options: dict[str, Any] | None = None, kind: str | None = None
    ) -> PlanSummary:
        """Create and plan an ingestion of ``source``; nothing is processed yet."""
        ingestion_id = self._create(source, options=options, kind=kind)
        return plan_ingestion(self.db, self.config, ingestion_id)

    def enqueue(self, plan: PlanSummary) -> int:
        """Queue the plan's pending chunks; returns how many were queued."""
        return self.queue.enqueue_chunks(plan.ingestion_id, plan.pending_chunks)

    def submit(self, source: Path, *, options: dict[str, Any] | None = None) -> PlanSummary:
        """Create, plan and queue an ingestion of ``source``, holding its lease throughout.

        Between the end of planning and the queueing of its chunks the ingestion would otherwise
        be ``running`` with no driver, free for another process to take over; an in-process
        queue (embedded mode) takes the lease over from here, RQ's chunks are the reconciler's.
        """
        ingestion_id = self._create(source, options=options)
        with lease(self.db, ingestion_id):
            plan = plan_ingestion(self.db, self.config, ingestion_id)
            self.enqueue(plan)
        return plan

    @contextmanager
    def start_embedded(
        self, source: Path, *, options: dict[str, Any] | None = None
    ) -> Iterator[PlanSummary]:
        """The ingestion an embedded run of ``source`` works on, planned, leased to this
        process until the block ends (run its chunks inside: :meth:`run` holds the same lease).

        The interrupted embedded ingestion of the same source if there is one (re-running a
        source after a crash or a full disk resumes it: no second ingestion, nothing processed
        twice), else a new one. ``source`` is compared as given: pass a resolved path. The lease
        is held from creation (or claim) on: between planning and the run a released lease
        would let another embedded run take the ingestion over at once.
        """
        for orphan in self.interrupted_embedded():
            if orphan.source == str(source) and self._claim(orphan.id, UNFINISHED):
                log.info("resuming interrupted ingestion %d of %s", orphan.id, source)
                with lease(self.db, orphan.id):
                    yield self._remaining(orphan.id)
                return
        ingestion_id = self._create(source, options={**(options or {}), "runner": EMBEDDED})
        with lease(self.db, ingestion_id):
            yield plan_ingestion(self.db, self.config, ingestion_id)

    def run(
        self, plan: PlanSummary, models: ModelProvider, on_chunk: ChunkCallback | None = None
    ) -> None:
        """Embedded mode: process every pending chunk of ``plan`` in this process, in order.

        Holds the ingestion's lease meanwhile, so that another embedded run leaves it alone
        while this process lives, and takes it over once it does not.
        """
        with lease(self.db, plan.ingestion_id):
            detector = models.get()
            for chunk in plan.pending_chunks:
                summary = process_chunk(
                    self.db,
                    self.config,
                    detector,
                    plan.ingestion_id,
                    chunk,
                    streams=models.streams,
                )
                if on_chunk is not None:
                    on_chunk(plan, summary)

    # --- takeovers --------------------------------------------------------------------------

    def interrupted_embedded(self) -> list[Orphan]:
        """Embedded ingestions left planning or running by a process that is gone, oldest
        first."""
        return [
            orphan
            for orphan in find_abandoned(self.db, UNFINISHED, stale_s=self.stale_s)
            if orphan.options.get("runner") == EMBEDDED
        ]

    def finish_interrupted(
        self,
        models: ModelProvider,
        *,
        on_plan: Callable[[PlanSummary], None] | None = None,
        on_chunk: ChunkCallback | None = None,
    ) -> list[PlanSummary]:
        """Finish every embedded ingestion whose process is gone (run by the next embedded
        run). ``on_plan`` is called with each one before its chunks run."""
        resumed = []
        for orphan in self.interrupted_embedded():
            if not self._claim(orphan.id, UNFINISHED):
                continue
            log.info("finishing interrupted ingestion %d of %s", orphan.id, orphan.source)
            with lease(self.db, orphan.id):  # from the claim to the end of the run, no gap
                plan = self._remaining(orphan.id)
                if on_plan is not None:
                    on_plan(plan)
                self.run(plan, models, on_chunk=on_chunk)
            resumed.append(plan)
        return resumed

    def replan_orphans(self) -> list[int]:
        """Plan again, then queue, every ingestion left ``planning`` by a planner that is gone.

        A planner that is alive (on this host, or beating its heartbeat from elsewhere) is left
        alone. Returns the ingestions taken over.
        """
        resumed = []
        planning = [IngestionStatus.PLANNING]
        for orphan in find_abandoned(self.db, planning, stale_s=self.stale_s):
            if not self._claim(orphan.id, planning):
                continue  # another process took it over first, or its planner came back
            log.warning(
                "ingestion %d: its planner stopped mid-planning; planning it again", orphan.id
            )
            # Held until queued: an in-process queue takes the lease over with no gap in which
            # the planned ingestion would look driverless (see requeue_orphans).
            with lease(self.db, orphan.id):
                self.enqueue(resume_plan(self.db, self.config, orphan.id))
            resumed.append(orphan.id)
        return resumed

    def requeue_orphans(self) -> list[int]:
        """Embedded mode: queue again the pending chunks of every ``running`` ingestion whose
        driver is gone; one with none left is marked done. Returns the ingestions taken over.

        Only for an in-process queue, which leases what it holds (``shared.jobs.make_queue``):
        a live driver (``roisearch ingest`` running it, this process's own queue) is left
        alone. With RQ, a planned ingestion holds no lease, so every one would look abandoned:
        there the reconciler recovers lost chunks instead.
        """
        resumed = []
        running = [IngestionStatus.RUNNING]
        for orphan in find_abandoned(self.db, running, stale_s=self.stale_s):
            if not self._claim(orphan.id, running):
                continue
            with lease(self.db, orphan.id):
                with self.db.read() as session:
                    chunks = pending_chunks(session, orphan.id)
                if chunks:
                    log.warning(
                        "ingestion %d: its driver stopped with %d chunk(s) left; running them here",
                        orphan.id,
                        len(chunks),
                    )
                    self.queue.enqueue_chunks(orphan.id, chunks)
                else:
                    with self.db.begin() as session:
                        finish_if_complete(session, orphan.id)
                    # The uploaded source is no longer needed.
                    remove_upload_if_finished(self.db, self.config.data_dir, orphan.id)
            resumed.append(orphan.id)
        return resumed

    def reconcile(self, *, grace_s: float = GRACE_S) -> int:
        """Queue every stale pending chunk the queue does not know; return how many. Also marks
        done the running ingestions with nothing pending (``reconciler.finish_settled``).

        Redis is never the system of record: after a Redis restart without persistence (or a
        job that used up its retries) the pending items in the database are queued again.
        """
        finish_settled(self.db, self.config.data_dir)
        known = self.queue.known_chunks()
        if known is None:
            return 0
        total = 0
        for ingestion_id, chunks in lost_chunks(self.db, known, grace_s=grace_s).items():
            total += self.queue.enqueue_chunks(ingestion_id, chunks)
            log.info(
                "reconciler re-enqueued %d chunk(s) of ingestion %d", len(chunks), ingestion_id
            )
        return total

    def recover(self) -> None:
        """One pass of the background takeovers: re-plan what dead planners left, and in
        embedded mode queue again what dead drivers left running."""
        # Planning first: what it plans and queues is leased by an in-process queue, so the
        # second pass does not queue it again.
        self.replan_orphans()
        if self.config.embedded:
            self.requeue_orphans()

    def keep_recovering(self, stop: threading.Event, interval_s: float) -> None:
        """:meth:`recover` now, then every ``interval_s`` until ``stop`` is set.

        Its own thread in every process that runs it: planning a large tar again reads the whole
        stream. A failed pass is logged and retried (every step is idempotent).
        """
        while not stop.is_set():
            try:
                self.recover()
            except Exception:
                log.warning("re-planning pass failed (will retry)", exc_info=True)
            if stop.wait(interval_s):
                return

    # --- helpers ----------------------------------------------------------------------------

    def _create(
        self, source: Path, *, options: dict[str, Any] | None = None, kind: str | None = None
    ) -> int:
        with self.db.begin() as session:
            return create_ingestion(session, source, kind=kind, options=options).id

    def _claim(self, ingestion_id: int, statuses: Collection[str]) -> bool:
        return claim(self.db, ingestion_id, statuses, stale_s=self.stale_s)

    def _remaining(self, ingestion_id: int) -> PlanSummary:
        """What is left to run of an ingestion this process has claimed: re-planned if its
        planning was interrupted, else its pending chunks (an ingestion with none is
        finished)."""
        with self.db.read() as session:
            status = session.get_one(Ingestion, ingestion_id).status
            summary = (
                None if status == IngestionStatus.PLANNING else plan_summary(session, ingestion_id)
            )
        if summary is None:
            return resume_plan(self.db, self.config, ingestion_id)
        if not summary.pending_chunks:
            with self.db.begin() as session:
                finish_if_complete(session, ingestion_id)
            remove_upload_if_finished(self.db, self.config.data_dir, ingestion_id)
        return summary
