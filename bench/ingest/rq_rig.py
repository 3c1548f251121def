"""The RQ rows: ``roisearch worker`` subprocesses on a private redis-server, timed from enqueue
until every item is done."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.ingest.rows import (
    CHUNK,
    Row,
    base_settings,
)
from bench.proof.processes import child_env, spawn, stop_process
from bench.proof.servers import RedisServer


class RQRig:
    """A private redis-server and ``n`` ``roisearch worker`` subprocesses sharing ``cores``
    torch threads, SQLite in ``workdir``; every worker loads and warms its model on ``warm``
    first. ``run(folder)`` times one ingestion from enqueue until every item is done."""

    def __init__(
        self,
        workdir: Path,
        weights: Path,
        img_size: int,
        cores: int,
        warm: Path,
        n: int,
        chunk: int = CHUNK,
    ) -> None:
        self.workdir, self.weights, self.img_size = workdir, weights, img_size
        self.warm, self.n, self.chunk = warm, n, chunk
        self.threads = max(1, cores // n)
        self.mode = f"RQ, {n} worker(s) x {self.threads} torch thread(s)"
        self._redis: RedisServer | None = None
        self._workers: list[subprocess.Popen[bytes]] = []
        self._db: Any = None

    def __enter__(self) -> RQRig:
        from redis import Redis
        from rq import Worker

        from shared.db import migrations
        from shared.db.database import Database
        from shared.queueing import RQJobQueue

        self.workdir.mkdir(parents=True)
        self._redis = RedisServer(self.workdir)
        try:
            self._redis.start()
            url = self._redis.url
            self.settings = base_settings(
                self.workdir,
                self.weights,
                self.img_size,
                self.threads,
                redis_url=url,
                chunk_size=self.chunk,
            )
            migrations.upgrade(self.settings.resolved_database_url)
            self._db = Database.from_url(self.settings.resolved_database_url)
            env = child_env(
                {
                    "data_dir": self.settings.data_dir,
                    "redis_url": url,
                    "weights": self.weights,
                    "img_size": self.img_size,
                    "chunk_size": self.chunk,
                    "torch_threads": self.threads,
                    "log_level": "WARNING",
                }
            )
            self._workers = [
                spawn(["roisearch", "worker"], env, self.workdir, self.workdir / f"worker-{i}.log")
                for i in range(self.n)
            ]
            while len(Worker.all(connection=Redis.from_url(url))) < self.n:
                if any(w.poll() is not None for w in self._workers):
                    raise RuntimeError("a worker exited during start-up")
                time.sleep(0.2)
            self._queue = RQJobQueue.from_settings(self.settings)
            self.run(self.warm)  # every worker loads and warms its model on other images first
        except BaseException:
            self.__exit__()
            raise
        return self

    def run(self, folder: Path) -> Row:
        from sqlalchemy import select

        from shared.db.models import Ingestion
        from shared.ingestion.progress import ingestion_progress
        from shared.ingestion.supervisor import IngestionSupervisor

        start = time.perf_counter()
        supervisor = IngestionSupervisor(self._db, self.settings.ingestion_config(), self._queue)
        plan = supervisor.start(folder)
        supervisor.enqueue(plan)
        while True:
            # one cheap status read per poll: the full progress (counts, objects, rate) costs
            # tens of ms at 1,000 items, CPU taken from the worker being measured
            with self._db.read() as session:
                status = session.scalar(
                    select(Ingestion.status).where(Ingestion.id == plan.ingestion_id)
                )
            if status not in ("planning", "running"):
                seconds = time.perf_counter() - start
                with self._db.read() as session:
                    progress = ingestion_progress(session, plan.ingestion_id)
                assert progress is not None
                return Row(self.mode, plan.total_items, seconds, progress.objects, "SQLite")
            time.sleep(0.25)

    def __exit__(self, *_: object) -> None:
        for w in self._workers:
            w.send_signal(signal.SIGTERM)  # all at once: they shut down side by side
        for w in self._workers:
            stop_process(w, 30)
        if self._redis is not None:
            self._redis.stop()
        if self._db is not None:
            self._db.dispose()


def bench_rq(
    workdir: Path,
    weights: Path,
    img_size: int,
    cores: int,
    src: Path,
    warm: Path,
    n: int,
    chunk: int = CHUNK,
) -> Row:
    with RQRig(workdir, weights, img_size, cores, warm, n, chunk) as rig:
        return rig.run(src)
