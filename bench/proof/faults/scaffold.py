"""The scaffold every fault scenario shares: a private scenario world, RQ workers under a
supervisor, an ingestion to hit, and afterwards the same two verdicts — did the ingestion
complete, and do the invariants (``invariants.checks``) hold.

A scenario body only injects its fault and reports what it did::

    with ingestion_under_fault(name, config, servers, base, report, images=n, seed=s) as run:
        ...  # kill, restart, terminate; report.add(Check(...)) for the fault itself
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from redis import Redis
from rq import Queue, Worker

from bench.proof import invariants
from bench.proof.config import ProofConfig, Scenario
from bench.proof.corpus import scene_archive
from bench.proof.invariants import item_account
from bench.proof.processes import WorkerPool, child_env
from bench.proof.results import Check, Report
from bench.proof.servers import PrivateServers
from shared.db.database import Database
from shared.settings import Settings

SECTION = "faults"

# At most this many batches per fault scenario: a fast model (the demo detector ingests a
# quick batch in a second or two) finishes one before every fault has landed.
MAX_BATCHES = 6


def enqueue_source(settings: Settings, db: Database, source: Path) -> int:
    """Plan ``source`` into items and enqueue its chunks on RQ, as ``roisearch ingest`` does."""
    from shared.ingestion.runner import enqueue_plan, start_ingestion
    from shared.queueing import RQJobQueue

    plan = start_ingestion(db, settings, source.resolve())
    queue = RQJobQueue.from_settings(settings)
    try:
        enqueue_plan(queue, plan)
    finally:
        queue.connection.close()
    return plan.ingestion_id


def _workers(settings: Settings) -> list[Worker]:
    assert settings.redis_url is not None
    with Redis.from_url(settings.redis_url, socket_timeout=5) as connection:
        queue = Queue(settings.queue_name, connection=connection)
        return [w for w in Worker.all(queue=queue) if isinstance(w, Worker)]


def wait_workers(settings: Settings, pool: WorkerPool, n: int, timeout: float) -> None:
    """Until ``n`` of our worker processes are registered with RQ (model loaded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if sum(1 for w in _workers(settings) if w.pid in pool.pids) >= n:
                return
        time.sleep(0.3)
    raise TimeoutError(f"{n} worker(s) did not register within {timeout:.0f} s")


def busy_workers(settings: Settings, pool: WorkerPool) -> list[tuple[int, str]]:
    """(pid, job id) of our live workers that are running a job right now."""
    out = []
    for worker in _workers(settings):
        job = worker.get_current_job_id()
        if job and worker.pid in pool.pids:
            out.append((int(worker.pid), str(job)))
    return out


def rq_state(settings: Settings) -> dict[str, int]:
    """Job counts per RQ registry of the scenario's queue (diagnostics for a stuck run)."""
    from rq.registry import (
        DeferredJobRegistry,
        FailedJobRegistry,
        ScheduledJobRegistry,
        StartedJobRegistry,
    )

    assert settings.redis_url is not None
    with Redis.from_url(settings.redis_url, socket_timeout=5) as connection:
        queue = Queue(settings.queue_name, connection=connection)
        return {
            "queued": queue.count,
            "started": StartedJobRegistry(queue=queue).count,
            "scheduled": ScheduledJobRegistry(queue=queue).count,
            "deferred": DeferredJobRegistry(queue=queue).count,
            "failed": FailedJobRegistry(queue=queue).count,
        }


def wait_quiet(
    db: Database, ingestion_ids: list[int], *, stall_s: float, hard_s: float
) -> tuple[bool, float]:
    """Wait until nothing is pending; give up after ``stall_s`` without progress."""
    began = last_change = time.monotonic()
    last: tuple[int, int, int] | None = None
    while True:
        account = item_account(db, ingestion_ids)
        now = time.monotonic()
        if account.pending == 0 and not account.unfinished_ingestions:
            return True, now - began
        state = (account.done, account.failed, account.pending)
        if state != last:
            last, last_change = state, now
        if now - last_change > stall_s or now - began > hard_s:
            return False, now - began
        time.sleep(0.5)


def completion(
    name: str, finished: bool, elapsed: float, extra: str = "", settings: Settings | None = None
) -> Check:
    state: dict[str, int] = {}
    if not finished and settings is not None and settings.redis_url:
        with contextlib.suppress(Exception):
            state = rq_state(settings)
    return Check(
        SECTION,
        f"{name}: ingestion completes",
        f"{'completed' if finished else 'STUCK (no progress)'} after {elapsed:.0f} s{extra}"
        + (f"; RQ jobs {state}" if state else ""),
        "completes",
        finished,
        {"elapsed_s": elapsed, "rq": state},
    )


def stall_s(config: ProofConfig) -> float:
    # The reconciler runs every 30 s with a 20 s grace period; more than that without any
    # progress means nothing will recover the work.
    return 75.0 if config.quick else 150.0


@dataclass
class FaultRun:
    """What a scenario body works with while its ingestion runs under the workers."""

    scenario: Scenario
    settings: Settings
    db: Database
    pool: WorkerPool
    ingestion_ids: list[int]
    images: int  # per batch
    max_batches: int
    began: float
    recovery_from: float | None = None  # set by the body: completion time counts from here
    note: str = ""  # set by the body: said after the completion time

    def work_pending(self) -> bool:
        """True while the workers have items to be hit in; when they ran out, enqueue another
        batch of fresh scenes (appended to ``ingestion_ids``) unless there have been
        ``max_batches`` already. Fresh scenes, so nothing is linked instead of computed."""
        if item_account(self.db, self.ingestion_ids).pending > 0:
            return True
        k = len(self.ingestion_ids)
        if k >= self.max_batches:
            return False
        archive = scene_archive(self.scenario.root / f"scenes-{k}.zip", self.images, seed=1000 + k)
        self.ingestion_ids.append(enqueue_source(self.settings, self.db, archive))
        return True

    def within(self, timeout_s: float) -> bool:
        """True while less than ``timeout_s`` has passed since the ingestion was enqueued."""
        return time.monotonic() - self.began < timeout_s


@contextlib.contextmanager
def ingestion_under_fault(
    name: str,
    config: ProofConfig,
    servers: PrivateServers,
    base: Path,
    report: Report,
    *,
    images: int,
    seed: int,
) -> Iterator[FaultRun]:
    """Run the body while ``config.workers`` supervised workers ingest ``images`` fresh scenes;
    then wait until nothing is pending and report completion and the invariants."""
    sc = Scenario.create(name, config, servers, base)
    settings = sc.settings()
    archive = scene_archive(sc.root / "scenes.zip", images, seed=seed)
    db = Database.from_url(settings.resolved_database_url)
    env = child_env(sc.env_values("worker"))
    try:
        with WorkerPool(config.workers, env, sc.root) as pool:
            wait_workers(settings, pool, config.workers, timeout=180)
            run = FaultRun(
                sc,
                settings,
                db,
                pool,
                [enqueue_source(settings, db, archive)],
                images,
                MAX_BATCHES,
                time.monotonic(),
            )
            yield run
            finished, elapsed = wait_quiet(
                db, run.ingestion_ids, stall_s=stall_s(config), hard_s=config.scenario_timeout_s
            )
            if run.recovery_from is not None:
                elapsed = time.monotonic() - run.recovery_from
            unexpected = pool.unexpected_exits
        extra = f"{run.note}; {unexpected} unexpected worker exits"
        report.add(completion(name, finished, elapsed, extra, settings))
        report.checks.extend(
            invariants.checks(
                SECTION,
                name,
                settings,
                db,
                sc.root / "fresh-index",
                ingestion_ids=run.ingestion_ids,
            )
        )
    finally:
        db.dispose()
