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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    from shared.ingestion.supervisor import IngestionSupervisor
    from shared.queueing import RQJobQueue

    queue = RQJobQueue.from_settings(settings)
    try:
        supervisor = IngestionSupervisor(db, settings.ingestion_config(), queue)
        plan = supervisor.start(source.resolve())
        supervisor.enqueue(plan)
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
class World:
    """One fault scenario's private world (``Scenario``), its settings and a database handle."""

    name: str
    scenario: Scenario
    settings: Settings
    db: Database

    def invariant_checks(self, **kwargs: Any) -> list[Check]:
        """``invariants.checks`` of this world (``kwargs``: ingestion ids, API, sample)."""
        fresh = self.scenario.root / "fresh-index"
        return invariants.checks(SECTION, self.name, self.settings, self.db, fresh, **kwargs)


@contextlib.contextmanager
def scenario_world(
    name: str, config: ProofConfig, servers: PrivateServers, base: Path, **overrides: Any
) -> Iterator[World]:
    """A fresh world for scenario ``name`` (settings ``overrides``); its database handle is
    disposed of on the way out."""
    sc = Scenario.create(name, config, servers, base, **overrides)
    settings = sc.settings()
    db = Database.from_url(settings.resolved_database_url)
    try:
        yield World(name, sc, settings, db)
    finally:
        db.dispose()


ScenarioFn = Callable[[ProofConfig, PrivateServers, Path, Report], None]


def in_world(
    name: str, body: Callable[[ProofConfig, World, Report], None], **overrides: Any
) -> ScenarioFn:
    """The scenario ``name``: ``body`` run in a fresh :func:`scenario_world`."""

    def scenario(config: ProofConfig, servers: PrivateServers, base: Path, report: Report) -> None:
        with scenario_world(name, config, servers, base, **overrides) as world:
            body(config, world, report)

    return scenario


@dataclass
class FaultRun:
    """What a scenario body works with while its ingestion runs under the workers."""

    world: World
    pool: WorkerPool
    ingestion_ids: list[int]
    images: int  # per batch
    max_batches: int
    began: float
    recovery_from: float | None = None  # set by the body: completion time counts from here
    note: str = ""  # set by the body: said after the completion time

    @property
    def settings(self) -> Settings:
        return self.world.settings

    @property
    def db(self) -> Database:
        return self.world.db

    def work_pending(self) -> bool:
        """True while the workers have items to be hit in; when they ran out, enqueue another
        batch of fresh scenes (appended to ``ingestion_ids``) unless there have been
        ``max_batches`` already. Fresh scenes, so nothing is linked instead of computed."""
        if item_account(self.db, self.ingestion_ids).pending > 0:
            return True
        k = len(self.ingestion_ids)
        if k >= self.max_batches:
            return False
        path = self.world.scenario.root / f"scenes-{k}.zip"
        archive = scene_archive(path, self.images, seed=1000 + k)
        self.ingestion_ids.append(enqueue_source(self.settings, self.db, archive))
        return True

    def rounds(self, done: Callable[[], bool], timeout_s: float) -> Iterator[None]:
        """Rounds of fault injection until ``done()``, ``timeout_s`` after the ingestion was
        enqueued, or the workers have nothing left to be hit in (see :meth:`work_pending`)."""
        while not done() and time.monotonic() - self.began < timeout_s and self.work_pending():
            yield None


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
    with scenario_world(name, config, servers, base) as world:
        sc, settings, db = world.scenario, world.settings, world.db
        archive = scene_archive(sc.root / "scenes.zip", images, seed=seed)
        env = child_env(sc.env_values("worker"))
        with WorkerPool(config.workers, env, sc.root) as pool:
            wait_workers(settings, pool, config.workers, timeout=180)
            run = FaultRun(
                world,
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
        report.checks.extend(world.invariant_checks(ingestion_ids=run.ingestion_ids))
