"""``roisearch worker``: one process, model loaded once, RQ SimpleWorker (no fork after load).

Recovery from a SIGKILLed worker: RQ's ``SimpleWorker`` runs jobs in its own process and keeps
no heartbeat during a job, so its registry entry would live ``job_timeout + 60`` s. Here a
heartbeat thread renews the job every ``job_monitoring_interval`` seconds with a short TTL,
and a janitor thread in every worker cleans the started-job registry every few seconds, so a
killed worker's job is retried within about half a minute (RQ default: ~7 minutes).
The janitor also runs the reconciler, which re-enqueues pending items unknown to Redis, and a
re-planner thread takes over ingestions left ``planning`` by a planner that died (an API killed
mid-upload): it plans them again and queues them. Both are the ingestion supervisor's
(``shared.ingestion.supervisor``); this module only runs them.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from typing import Any

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from rq import Queue, SimpleWorker
from rq.exceptions import StopRequested
from rq.job import Job

from shared.db.database import Database
from shared.db.schema import SchemaNotReadyError, open_database
from shared.ingestion.supervisor import IngestionSupervisor
from shared.model_provider import ModelProvider
from shared.queueing import RQJobQueue
from shared.settings import Settings
from worker.context import WorkerContext, install

log = logging.getLogger(__name__)

MONITORING_INTERVAL_S = 5
JANITOR_INTERVAL_S = 5.0
RECONCILE_INTERVAL_S = 30.0
# Cheap when there is nothing to do (one query); short, so that an upload whose API died
# mid-planning is planned again within seconds when its planner ran on this host.
REPLAN_INTERVAL_S = 5.0
RESTART_DELAY_S = 2.0
# How long the worker's pubsub thread (RQ's command channel) waits for a message per poll.
# RQ uses 60 s; since redis-py 8, stopping that thread waits for the poll in progress, so a
# SIGTERMed worker took up to a minute to exit (measured: 60.7 s in 4 of 6 runs of the
# Redis-restart test) — past `docker compose stop`'s 10 s grace period, hence a SIGKILL.
PUBSUB_POLL_S = 1.0


class ModelWorker(SimpleWorker):
    """SimpleWorker that keeps short-TTL heartbeats alive from a thread while a job runs."""

    def get_heartbeat_ttl(self, job: Job) -> int:
        return int(self.job_monitoring_interval) + 15

    def subscribe(self) -> None:
        # RQ's own, with a short poll (see PUBSUB_POLL_S): an idle wake-up a second.
        self.log.info("Worker %s: subscribing to channel %s", self.name, self.pubsub_channel_name)
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        # RQ declares the attribute as None (assigned in __init__, untyped).
        self.pubsub_thread = self.pubsub.run_in_thread(  # type: ignore[assignment]
            sleep_time=PUBSUB_POLL_S, daemon=True, exception_handler=self._pubsub_exception_handler
        )

    def execute_job(self, job: Job, queue: Queue) -> Any:
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.job_monitoring_interval):
                try:
                    self.maintain_heartbeats(job)
                except Exception:  # a missed beat must never kill the job
                    log.warning("heartbeat for job %s failed", job.id, exc_info=True)

        thread = threading.Thread(target=beat, name="rq-heartbeat", daemon=True)
        thread.start()
        try:
            return super().execute_job(job, queue)
        finally:
            stop.set()
            thread.join()


def _janitor(jobs: RQJobQueue, supervisor: IngestionSupervisor, stop: threading.Event) -> None:
    since_reconcile = RECONCILE_INTERVAL_S
    while not stop.wait(JANITOR_INTERVAL_S):
        try:
            jobs.expire_abandoned()
            since_reconcile += JANITOR_INTERVAL_S
            if since_reconcile >= RECONCILE_INTERVAL_S:
                since_reconcile = 0.0
                supervisor.reconcile()
        except Exception:
            log.warning("janitor pass failed (will retry)", exc_info=True)


def start_supervision(
    settings: Settings, db: Database, stop: threading.Event
) -> list[threading.Thread]:
    """The worker's background threads until ``stop``: the janitor (expired jobs handed back,
    the reconciler) and the re-planner (``IngestionSupervisor.keep_recovering``)."""
    jobs = RQJobQueue.from_settings(settings)
    supervisor = IngestionSupervisor(db, settings.ingestion_config(), jobs)
    threads = [
        threading.Thread(
            target=_janitor, args=(jobs, supervisor, stop), name="rq-janitor", daemon=True
        ),
        # Its own thread, not the janitor's: planning a large tar again reads the whole
        # stream, and the janitor's registry cleanup must keep its 5 s beat meanwhile.
        threading.Thread(
            target=supervisor.keep_recovering,
            args=(stop, REPLAN_INTERVAL_S),
            name="rq-replanner",
            daemon=True,
        ),
    ]
    for thread in threads:
        thread.start()
    return threads


def run_worker(settings: Settings, *, burst: bool = False) -> None:
    """Load the model, then take chunk jobs until stopped (or until the queue is empty)."""
    if settings.redis_url is None:
        raise SystemExit(
            "roisearch worker needs ROISEARCH_REDIS_URL; without Redis, `roisearch ingest` "
            "runs the jobs in-process (embedded mode)"
        )
    try:  # SQLite: brought to head here; PostgreSQL: must have been upgraded on purpose
        db = open_database(settings.resolved_database_url)
    except SchemaNotReadyError as exc:
        raise SystemExit(f"roisearch worker: {exc}") from None
    models = ModelProvider(settings.detector_config(), throughput=True)
    models.get()  # load before taking work: a broken model must fail here, not per job
    install(WorkerContext(settings=settings, db=db, models=models))
    connection = Redis.from_url(settings.redis_url)
    queue = Queue(settings.queue_name, connection=connection)
    stop = threading.Event()
    start_supervision(settings, db, stop)
    try:
        while True:
            worker = ModelWorker(
                [queue],
                connection=connection,
                # A fresh name each round: the previous registration may outlive a lost Redis.
                name=f"roisearch-{socket.gethostname()}-{uuid.uuid4().hex[:6]}",
                worker_ttl=settings.worker_ttl_s,
                job_monitoring_interval=MONITORING_INTERVAL_S,
            )
            try:
                worker.work(burst=burst, logging_level=settings.log_level)
            except RedisConnectionError:
                log.warning("lost the connection to Redis", exc_info=True)
            # RQ's loop quits on any Redis error outside its dequeue (finishing a job while
            # Redis restarts, say). The model is loaded: start a new round instead of exiting;
            # the reconciler re-enqueues whatever the lost Redis forgot.
            if burst or _stop_requested(worker):
                return
            log.warning("worker loop ended unexpectedly; restarting in %.0f s", RESTART_DELAY_S)
            try:
                time.sleep(RESTART_DELAY_S)
            except StopRequested:  # SIGTERM during the pause (RQ's handler is still installed)
                return
            if _stop_requested(worker):
                return
    finally:
        stop.set()
        db.dispose()


def _stop_requested(worker: ModelWorker) -> bool:
    """Whether SIGTERM/SIGINT asked this worker to stop (RQ keeps no public flag for it)."""
    return bool(getattr(worker, "_stop_requested", False)) or (
        getattr(worker, "_shutdown_requested_date", None) is not None
    )
