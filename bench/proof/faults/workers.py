"""Faults under a running ingestion: workers SIGKILLed mid-chunk, Redis restarted without
persistence, PostgreSQL backends of the workers terminated mid-transaction."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from bench.proof.config import ProofConfig
from bench.proof.faults.scaffold import SECTION, busy_workers, ingestion_under_fault
from bench.proof.invariants import item_account
from bench.proof.results import Check, Report
from bench.proof.servers import PrivateServers


def worker_kills(config: ProofConfig, servers: PrivateServers, base: Path, report: Report) -> None:
    name = "worker SIGKILL"
    rng = random.Random(0)
    kills: list[dict[str, Any]] = []
    with ingestion_under_fault(
        name, config, servers, base, report, images=config.kill_images, seed=1
    ) as run:
        # a fast model may finish a batch before every kill landed: rounds feed it more
        for _ in run.rounds(lambda: len(kills) >= config.kills, config.scenario_timeout_s):
            busy = busy_workers(run.settings, run.pool)
            if busy:
                pid, job = rng.choice(busy)
                time.sleep(rng.uniform(0.05, 0.4))  # somewhere inside the chunk
                if run.pool.kill(pid):
                    kills.append({"pid": pid, "job": job, "t": time.monotonic() - run.began})
                    time.sleep(rng.uniform(0.5, 1.5))
                    continue
            time.sleep(0.1)
        batches = len(run.ingestion_ids)
        report.add(
            Check(
                SECTION,
                f"{name}: kills mid-chunk",
                f"{len(kills)} SIGKILLs of busy workers during "
                f"{config.kill_images * batches} images ({batches} ingestion(s))",
                f">= {config.kills}",
                len(kills) >= config.kills,
                {"kills": kills},
            )
        )


def redis_restart(config: ProofConfig, servers: PrivateServers, base: Path, report: Report) -> None:
    name = "Redis restart (no persistence)"
    with ingestion_under_fault(
        name, config, servers, base, report, images=config.redis_images, seed=2
    ) as run:
        deadline = time.monotonic() + config.scenario_timeout_s
        while time.monotonic() < deadline:
            account = item_account(run.db, run.ingestion_ids)
            if account.done + account.failed >= max(1, account.total // 4):
                break
            time.sleep(0.2)
        before = item_account(run.db, run.ingestion_ids)
        servers.redis.restart_without_persistence()
        evidence = servers.redis.verify()
        with servers.redis.client() as client:
            queued_after = int(client.llen(f"rq:queue:{run.settings.queue_name}"))
        run.recovery_from = time.monotonic()
        run.note = " (from the restart)"
        report.add(
            Check(
                SECTION,
                f"{name}: restart mid-ingestion",
                f"restarted with {before.pending} of {before.total} items pending; "
                f"queue after restart: {queued_after} jobs (new pid {evidence['pid']})",
                "jobs lost from Redis",
                before.pending > 0 and queued_after == 0,
                {"pending_at_restart": before.pending, "evidence": evidence},
            )
        )


def pg_terminate(config: ProofConfig, servers: PrivateServers, base: Path, report: Report) -> None:
    name = "PG backend terminated"
    terminated: list[tuple[int, str]] = []
    with ingestion_under_fault(
        name, config, servers, base, report, images=config.pg_images, seed=3
    ) as run:

        def enough() -> bool:
            return len(terminated) >= config.pg_terminations

        for _ in run.rounds(enough, config.scenario_timeout_s):
            hit = servers.postgres.terminate_backends(run.world.scenario.database, "proof-worker")
            if hit:
                terminated.extend(hit[: config.pg_terminations - len(terminated)])
                time.sleep(0.7)
            else:
                time.sleep(0.02)
        states: dict[str, int] = {}
        for _, state in terminated:
            states[state] = states.get(state, 0) + 1
        batches = len(run.ingestion_ids)
        report.add(
            Check(
                SECTION,
                f"{name}: connections dropped mid-chunk",
                f"{len(terminated)} worker backends terminated ({states}) during "
                f"{config.pg_images * batches} images ({batches} ingestion(s))",
                f">= {config.pg_terminations}",
                len(terminated) >= config.pg_terminations,
                {"terminated": terminated},
            )
        )
