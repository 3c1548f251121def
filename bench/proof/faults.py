"""Fault injection, each scenario followed by the invariant checks (``invariants.checks``).

- workers SIGKILLed K times mid-chunk during an ingestion of N images;
- Redis SIGKILLed and restarted empty (no persistence) mid-ingestion;
- PostgreSQL backends of the workers terminated mid-transaction (``pg_terminate_backend``);
- the API SIGKILLed while it writes an index snapshot, and while it receives an upload;
- a data directory that cannot be written, and a disk that fills up mid-ingestion.

Workers run under a supervisor that restarts any process that exits (what systemd or a
container runtime does); restarts that were not our kills are reported.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from redis import Redis
from rq import Queue, Worker
from sqlalchemy import func, select

from bench.proof import invariants
from bench.proof.config import API_KEY, ProofConfig, Scenario
from bench.proof.corpus import scene_archive, scene_jpegs, zip_of
from bench.proof.invariants import item_account
from bench.proof.processes import ApiServer, WorkerPool, child_env
from bench.proof.results import Check, Report
from bench.proof.servers import PrivateServers, free_port
from shared.db.database import Database
from shared.db.models import DetectedObject, Ingestion, IngestionStatus
from shared.settings import Settings

SECTION = "faults"


# --- helpers ---------------------------------------------------------------------------------


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


def _completion(
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


def _stall(config: ProofConfig) -> float:
    # The reconciler runs every 30 s with a 20 s grace period; more than that without any
    # progress means nothing will recover the work.
    return 75.0 if config.quick else 150.0


# --- workers SIGKILLed -----------------------------------------------------------------------


# At most this many batches per fault scenario: a fast model (the demo detector ingests a
# quick batch in a second or two) finishes one before every fault has landed.
MAX_BATCHES = 6


def _work_pending(
    root: Path, settings: Settings, db: Database, ingestion_ids: list[int], images: int
) -> bool:
    """True while the workers have items to be hit in; when they ran out, enqueue another
    batch of ``images`` fresh scenes (appended to ``ingestion_ids``) unless there have been
    ``MAX_BATCHES`` already. Fresh scenes, so nothing is linked instead of computed."""
    if item_account(db, ingestion_ids).pending > 0:
        return True
    k = len(ingestion_ids)
    if k >= MAX_BATCHES:
        return False
    archive = scene_archive(root / f"scenes-{k}.zip", images, seed=1000 + k)
    ingestion_ids.append(enqueue_source(settings, db, archive))
    return True


def worker_kills(config: ProofConfig, servers: PrivateServers, base: Path, report: Report) -> None:
    name = "worker SIGKILL"
    sc = Scenario.create(name, config, servers, base)
    settings = sc.settings()
    archive = scene_archive(sc.root / "scenes.zip", config.kill_images, seed=1)
    db = Database.from_url(settings.resolved_database_url)
    env = child_env(sc.env_values("worker"))
    rng = random.Random(0)
    kills: list[dict[str, Any]] = []
    try:
        with WorkerPool(config.workers, env, sc.root) as pool:
            wait_workers(settings, pool, config.workers, timeout=180)
            ingestion_ids = [enqueue_source(settings, db, archive)]
            began = time.monotonic()
            while (
                len(kills) < config.kills and time.monotonic() - began < config.scenario_timeout_s
            ):
                # a fast model may finish a batch before every kill landed: feed it more
                if not _work_pending(sc.root, settings, db, ingestion_ids, config.kill_images):
                    break
                busy = busy_workers(settings, pool)
                if busy:
                    pid, job = rng.choice(busy)
                    time.sleep(rng.uniform(0.05, 0.4))  # somewhere inside the chunk
                    if pool.kill(pid):
                        kills.append({"pid": pid, "job": job, "t": time.monotonic() - began})
                        time.sleep(rng.uniform(0.5, 1.5))
                        continue
                time.sleep(0.1)
            finished, elapsed = wait_quiet(
                db, ingestion_ids, stall_s=_stall(config), hard_s=config.scenario_timeout_s
            )
            unexpected = pool.unexpected_exits
        report.add(
            Check(
                SECTION,
                f"{name}: kills mid-chunk",
                f"{len(kills)} SIGKILLs of busy workers during "
                f"{config.kill_images * len(ingestion_ids)} images "
                f"({len(ingestion_ids)} ingestion(s))",
                f">= {config.kills}",
                len(kills) >= config.kills,
                {"kills": kills},
            )
        )
        report.add(
            _completion(name, finished, elapsed, f"; {unexpected} unexpected exits", settings)
        )
        report.checks.extend(
            invariants.checks(
                SECTION, name, settings, db, sc.root / "fresh-index", ingestion_ids=ingestion_ids
            )
        )
    finally:
        db.dispose()


# --- Redis restarted without persistence -----------------------------------------------------


def redis_restart(config: ProofConfig, servers: PrivateServers, base: Path, report: Report) -> None:
    name = "Redis restart (no persistence)"
    sc = Scenario.create(name, config, servers, base)
    settings = sc.settings()
    archive = scene_archive(sc.root / "scenes.zip", config.redis_images, seed=2)
    db = Database.from_url(settings.resolved_database_url)
    env = child_env(sc.env_values("worker"))
    try:
        with WorkerPool(config.workers, env, sc.root) as pool:
            wait_workers(settings, pool, config.workers, timeout=180)
            ingestion_id = enqueue_source(settings, db, archive)
            deadline = time.monotonic() + config.scenario_timeout_s
            while time.monotonic() < deadline:
                account = item_account(db, [ingestion_id])
                if account.done + account.failed >= max(1, account.total // 4):
                    break
                time.sleep(0.2)
            before = item_account(db, [ingestion_id])
            servers.redis.restart_without_persistence()
            evidence = servers.redis.verify()
            with servers.redis.client() as client:
                queued_after = int(client.llen(f"rq:queue:{settings.queue_name}"))
            restarted_at = time.monotonic()
            finished, _ = wait_quiet(
                db, [ingestion_id], stall_s=_stall(config), hard_s=config.scenario_timeout_s
            )
            recovery = time.monotonic() - restarted_at
            unexpected = pool.unexpected_exits
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
        report.add(
            _completion(
                name,
                finished,
                recovery,
                f" (from the restart); {unexpected} worker exits",
                settings,
            )
        )
        report.checks.extend(
            invariants.checks(
                SECTION, name, settings, db, sc.root / "fresh-index", ingestion_ids=[ingestion_id]
            )
        )
    finally:
        db.dispose()


# --- PostgreSQL backends terminated mid-chunk ------------------------------------------------


def pg_terminate(config: ProofConfig, servers: PrivateServers, base: Path, report: Report) -> None:
    name = "PG backend terminated"
    sc = Scenario.create(name, config, servers, base)
    settings = sc.settings()
    archive = scene_archive(sc.root / "scenes.zip", config.pg_images, seed=3)
    db = Database.from_url(settings.resolved_database_url)
    env = child_env(sc.env_values("worker"))
    terminated: list[tuple[int, str]] = []
    try:
        with WorkerPool(config.workers, env, sc.root) as pool:
            wait_workers(settings, pool, config.workers, timeout=180)
            ingestion_ids = [enqueue_source(settings, db, archive)]
            began = time.monotonic()
            while (
                len(terminated) < config.pg_terminations
                and time.monotonic() - began < config.scenario_timeout_s
            ):
                if not _work_pending(sc.root, settings, db, ingestion_ids, config.pg_images):
                    break
                hit = servers.postgres.terminate_backends(sc.database, "proof-worker")
                if hit:
                    terminated.extend(hit[: config.pg_terminations - len(terminated)])
                    time.sleep(0.7)
                else:
                    time.sleep(0.02)
            finished, elapsed = wait_quiet(
                db, ingestion_ids, stall_s=_stall(config), hard_s=config.scenario_timeout_s
            )
            unexpected = pool.unexpected_exits
        states: dict[str, int] = {}
        for _, state in terminated:
            states[state] = states.get(state, 0) + 1
        report.add(
            Check(
                SECTION,
                f"{name}: connections dropped mid-chunk",
                f"{len(terminated)} worker backends terminated ({states}) during "
                f"{config.pg_images * len(ingestion_ids)} images ({len(ingestion_ids)} "
                "ingestion(s))",
                f">= {config.pg_terminations}",
                len(terminated) >= config.pg_terminations,
                {"terminated": terminated},
            )
        )
        report.add(_completion(name, finished, elapsed, f"; {unexpected} worker exits", settings))
        report.checks.extend(
            invariants.checks(
                SECTION, name, settings, db, sc.root / "fresh-index", ingestion_ids=ingestion_ids
            )
        )
    finally:
        db.dispose()


# --- API SIGKILLed during a snapshot write ---------------------------------------------------


def _is_temp(name: str) -> bool:
    lower = name.lower()
    return "tmp" in lower or "partial" in lower or lower.startswith(".") or lower.endswith(".new")


def _watch_for_temp(directory: Path, timeout: float) -> str | None:
    """Poll until a temporary (being-written) file appears in ``directory``; its name."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            for root, _, files in os.walk(directory):
                for fname in files:
                    if _is_temp(fname):
                        return str(Path(root, fname).relative_to(directory))
        time.sleep(0.002)
    return None


def _trickle_objects(db: Database, space_id: int, stop: threading.Event, dim: int) -> None:
    """Keep committing new objects so the index keeps changing and snapshotting."""
    from bench.proof.seeding import add_objects

    while not stop.wait(0.3):
        with contextlib.suppress(Exception):
            add_objects(db, space_id, 50, dim)


def api_snapshot_kill(
    config: ProofConfig, servers: PrivateServers, base: Path, report: Report
) -> None:
    from bench.proof.seeding import seed_objects, synthetic_space

    name = "API SIGKILL during snapshot"
    sc = Scenario.create(name, config, servers, base, index_snapshot_interval_s=1.0)
    settings = sc.settings()
    db = Database.from_url(settings.resolved_database_url)
    dim = 128
    space_id = seed_objects(settings, config.snapshot_objects, synthetic_space(dim))
    api = ApiServer(child_env(sc.env_values("api")), sc.root, free_port())
    stop = threading.Event()
    trickle = threading.Thread(target=_trickle_objects, args=(db, space_id, stop, dim))
    caught: list[str | None] = []
    restarts: list[float] = []
    unusable: list[str] = []  # restarts that could not load the previous snapshot
    try:
        restarts.append(api.start())
        trickle.start()
        for _ in range(config.snapshot_kills):
            temp = _watch_for_temp(settings.index_dir, timeout=30)
            api.kill()
            caught.append(temp)
            restarts.append(api.start())
            for line in api.log_since_start().splitlines():
                if "unusable" in line or "corrupt" in line.lower():
                    unusable.append(line.strip()[-200:])
        stop.set()
        trickle.join()
        report.add(
            Check(
                SECTION,
                f"{name}: kills while a snapshot was being written",
                f"{sum(1 for c in caught if c)}/{len(caught)} kills caught a temp file "
                f"({next((c for c in caught if c), 'none')}); first start {restarts[0]:.1f} s, "
                f"restarts {', '.join(f'{r:.1f}' for r in restarts[1:])} s",
                f">= 1 of {len(caught)} mid-write, every restart ready",
                any(caught),
                {"caught": caught, "restart_s": restarts},
            )
        )
        report.add(
            Check(
                SECTION,
                f"{name}: previous snapshot loads after the kill",
                f"{len(restarts) - 1 - min(len(unusable), len(restarts) - 1)}/{len(restarts) - 1}"
                " restarts loaded it" + (f"; e.g. {unusable[0]!r}" if unusable else ""),
                "all (no rebuild from the database)",
                not unusable,
                {"unusable": unusable},
            )
        )
        report.checks.extend(
            invariants.checks(
                SECTION,
                name,
                settings,
                db,
                sc.root / "fresh-index",
                api=(api.url, API_KEY),
                sample=2000,
            )[1:]  # no ingestion items in this scenario
        )
    finally:
        stop.set()
        if trickle.is_alive():
            trickle.join()
        api.stop()
        db.dispose()


# --- API SIGKILLed during an upload ----------------------------------------------------------


def _slow_body(data: bytes, chunk: int, pause: float, sent: list[int]) -> Iterator[bytes]:
    for start in range(0, len(data), chunk):
        piece = data[start : start + chunk]
        sent[0] += len(piece)
        yield piece
        time.sleep(pause)


def _multipart(filename: str, payload: bytes) -> tuple[bytes, str]:
    boundary = "proof" + hashlib.sha1(payload[:64]).hexdigest()[:16]
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{filename}"\r\n'
        "Content-Type: application/zip\r\n\r\n"
    ).encode()
    return head + payload + f"\r\n--{boundary}--\r\n".encode(), boundary


def _entries(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()} if directory.is_dir() else set()


def _ingestion_ids(db: Database) -> set[int]:
    with db.read() as session:
        return {int(i) for i in session.scalars(select(Ingestion.id))}


def _new_entries(directory: Path, seen: set[str]) -> set[str]:
    return _entries(directory) - seen


def _new_ingestions(db: Database, seen: set[int]) -> set[int]:
    return _ingestion_ids(db) - seen


def _wait_for(condition: Callable[[], object], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if condition():
                return True
        time.sleep(0.003)
    return False


def _many_members_zip(root: Path) -> bytes:
    """An upload whose planning takes a while (thousands of members to enumerate)."""
    path = zip_of(root / "many.zip", {f"m/{i:05d}.bin": b"%05d" % i for i in range(3000)})
    return path.read_bytes()


def api_upload_kill(
    config: ProofConfig, servers: PrivateServers, base: Path, report: Report
) -> None:
    name = "API SIGKILL during upload"
    sc = Scenario.create(name, config, servers, base, max_archive_members=10_000)
    settings = sc.settings()
    db = Database.from_url(settings.resolved_database_url)
    archive = scene_archive(sc.root / "upload.zip", config.upload_images, seed=4)
    body, boundary = _multipart("upload.zip", archive.read_bytes())
    headers = {
        "X-API-Key": API_KEY,
        "Content-Type": f"multipart/form-data; boundary={boundary}",
    }
    api = ApiServer(child_env(sc.env_values("api")), sc.root, free_port())
    outcomes: list[str] = []
    try:
        with WorkerPool(1, child_env(sc.env_values("worker")), sc.root):
            api.start()
            # 1) mid-body: the API dies with half the upload received
            sent = [0]

            def upload() -> None:
                try:
                    httpx.post(
                        api.url + "/v1/ingestions",
                        content=_slow_body(body, 16 * 1024, 0.01, sent),
                        headers=headers,
                        timeout=60,
                    )
                    outcomes.append("answered")
                except httpx.HTTPError as exc:
                    outcomes.append(f"mid-body: {type(exc).__name__}")

            thread = threading.Thread(target=upload)
            thread.start()
            while sent[0] < len(body) // 2 and thread.is_alive():
                time.sleep(0.005)
            api.kill()
            thread.join()
            # 2) body received: killed while the server saves it, then while it plans it
            many, many_boundary = _multipart("many.zip", _many_members_zip(sc.root))
            many_headers = headers | {
                "Content-Type": f"multipart/form-data; boundary={many_boundary}"
            }
            # The quick battery kills once, where it hurts most: while planning.
            for moment in ("planning",) if config.quick else ("saving", "planning"):
                api.start()
                seen_dirs = _entries(settings.uploads_dir)
                seen_ids = _ingestion_ids(db)
                result: list[str] = []

                def post(result: list[str] = result, moment: str = moment) -> None:
                    content, hdrs = (body, headers) if moment == "saving" else (many, many_headers)
                    try:
                        response = httpx.post(
                            api.url + "/v1/ingestions", content=content, headers=hdrs, timeout=60
                        )
                        result.append(f"HTTP {response.status_code}")
                    except httpx.HTTPError as exc:
                        result.append(type(exc).__name__)

                thread = threading.Thread(target=post)
                thread.start()
                appeared: Callable[[], object] = (
                    partial(_new_entries, settings.uploads_dir, seen_dirs)
                    if moment == "saving"
                    else partial(_new_ingestions, db, seen_ids)
                )
                hit = _wait_for(appeared, timeout=30)
                api.kill()
                thread.join()
                outcomes.append(
                    f"killed {'while ' + moment if hit else 'late (missed)'}: "
                    f"{result[0] if result else '?'}"
                )
            # 3) the same upload again, completely: it must be ingested in full
            api.start()
            response = httpx.post(
                api.url + "/v1/ingestions", content=body, headers=headers, timeout=120
            )
            acknowledged = response.status_code in (200, 201, 202)
            final_id = int(response.json().get("id", 0)) if acknowledged else 0
            finished, elapsed = wait_quiet(
                db, [final_id], stall_s=_stall(config), hard_s=config.scenario_timeout_s
            )
            # The killed uploads' ingestions are re-planned by a worker's (or the API's)
            # re-planning pass and queued behind the retried one: give them the same time to
            # finish before calling any of them stuck.
            wait_quiet(
                db,
                sorted(_ingestion_ids(db)),
                stall_s=_stall(config),
                hard_s=config.scenario_timeout_s,
            )
        with db.read() as session:
            stuck = [
                (int(i), str(s))
                for i, s in session.execute(
                    select(Ingestion.id, Ingestion.status).where(
                        Ingestion.status.in_([IngestionStatus.PLANNING, IngestionStatus.RUNNING])
                    )
                )
            ]
        uploads = settings.uploads_dir
        leftovers = sum(1 for _ in uploads.iterdir()) if uploads.exists() else 0
        report.add(
            Check(
                SECTION,
                f"{name}: kills mid-body and mid-save",
                "; ".join(outcomes),
                "API restarts, upload retried",
                acknowledged,
                {"outcomes": outcomes},
            )
        )
        report.add(
            _completion(
                name, finished, elapsed, f" (the retried upload, HTTP {response.status_code})"
            )
        )
        report.add(
            Check(
                SECTION,
                f"{name}: ingestions left half-planned",
                f"{len(stuck)} stuck {stuck[:5]}; {leftovers} upload dirs on disk",
                "0 stuck",
                not stuck,
                {"stuck": stuck, "upload_dirs": leftovers},
            )
        )
        report.checks.extend(
            invariants.checks(
                SECTION,
                name,
                settings,
                db,
                sc.root / "fresh-index",
                ingestion_ids=[final_id],
                api=(api.url, API_KEY),
            )
        )
    finally:
        api.stop()
        db.dispose()


# --- unwritable data directory, disk full ----------------------------------------------------


def _run_cli(args: list[str], values: dict[str, Any], cwd: Path, timeout: float) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "roisearch", *args],
        env=child_env(values),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return proc.returncode, proc.stderr + proc.stdout


def _clear(code: int, output: str) -> tuple[bool, str]:
    """A clear error: non-zero exit, no traceback, a message; returns (clear, first line)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    error_lines = [
        line
        for line in lines
        if ("error" in line.lower() or "no space" in line.lower()) and "sqlalche.me" not in line
    ]
    first = (error_lines or lines or ["(no output)"])[-1][:200]
    traceback = "Traceback (most recent call last)" in output
    return code != 0 and not traceback and bool(lines), first + (
        " [traceback]" if traceback else ""
    )


@contextlib.contextmanager
def _tmpfs(path: Path, size: str, *, read_only: bool = False) -> Iterator[bool]:
    """Mount a small tmpfs at ``path`` (root only); yields False when that is not possible."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        yield False
        return
    options = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        yield False
        return
    try:
        yield True
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def _store_intact(data_dir: Path) -> tuple[int, int]:
    """(files, files whose content hash does not match their name) in the image store."""
    files = bad = 0
    for path in (data_dir / "images").rglob("*"):
        if path.is_file() and not path.name.startswith(".tmp"):
            files += 1
            stem = path.name.split(".")[0]
            if hashlib.sha256(path.read_bytes()).hexdigest() != stem:
                bad += 1
    return files, bad


def _sqlite_state(db_path: Path) -> tuple[str, int]:
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        integrity = str(conn.execute("PRAGMA integrity_check").fetchone()[0])
        objects = int(conn.execute("SELECT count(*) FROM objects").fetchone()[0])
    return integrity, objects


def disk_faults(config: ProofConfig, servers: PrivateServers, base: Path, report: Report) -> None:
    name = "disk"
    sc = Scenario.create(name, config, servers, base)
    embedded = {
        k: v for k, v in sc.overrides.items() if k not in ("redis_url", "database_url", "data_dir")
    }
    small = zip_of(
        sc.root / "small.zip", {f"s/{i}.jpg": d for i, d in enumerate(scene_jpegs(6, seed=5))}
    )
    large = zip_of(
        sc.root / "large.zip",
        {
            f"l/{i}.jpg": d
            for i, d in enumerate(
                scene_jpegs(16 if config.quick else 40, seed=6, width=640, height=480)
            )
        },
    )
    cli_timeout = config.scenario_timeout_s

    # (a) the data directory cannot be created: a regular file is in the way
    blocker = sc.root / "not-a-directory"
    blocker.write_text("a file where the data directory's parent should be")
    code, output = _run_cli(
        ["ingest", str(small)], embedded | {"data_dir": blocker / "data"}, sc.root, cli_timeout
    )
    clear, line = _clear(code, output)
    report.add(
        Check(
            SECTION,
            "unwritable data dir (path blocked): clear error",
            f"exit {code}: {line}",
            "non-zero exit, message, no traceback",
            clear,
            {"output": output},
        )
    )

    # (b) a read-only file system
    read_only = sc.root / "read-only"
    with _tmpfs(read_only, "1m", read_only=True) as mounted:
        if not mounted:
            read_only.chmod(0o555)
        code, output = _run_cli(
            ["ingest", str(small)],
            embedded | {"data_dir": read_only / "data"},
            sc.root,
            cli_timeout,
        )
        clear, line = _clear(code, output)
        report.add(
            Check(
                SECTION,
                "read-only data dir: clear error",
                f"exit {code}: {line}",
                "non-zero exit, message, no traceback",
                clear and (mounted or os.geteuid() != 0),
                {"output": output, "tmpfs": mounted},
            )
        )

    # (c) disk full mid-ingestion: what was there before survives, the run resumes after
    full = sc.root / "full"
    size_kb = 2048
    with _tmpfs(full, f"{size_kb}k") as mounted:
        if not mounted:
            report.add(
                Check(SECTION, "disk full", "not run: mounting a small tmpfs needs root", "", None)
            )
            return
        values = embedded | {"data_dir": full / "data"}
        code_a, out_a = _run_cli(["ingest", str(small)], values, sc.root, cli_timeout)
        db_path = full / "data" / "roisearch.db"
        integrity_a, objects_a = _sqlite_state(db_path)
        files_a, _ = _store_intact(full / "data")
        code_b, out_b = _run_cli(["ingest", str(large)], values, sc.root, cli_timeout)
        clear, line = _clear(code_b, out_b)
        integrity_b, objects_b = _sqlite_state(db_path)
        files_b, bad_b = _store_intact(full / "data")
        report.add(
            Check(
                SECTION,
                "disk full mid-ingestion: clear error",
                f"exit {code_b}: {line}",
                "non-zero exit, message, no traceback",
                code_a == 0 and clear,
                {"output": out_b, "first_run": out_a[-1500:]},
            )
        )
        survived = (
            integrity_b == "ok" and objects_b >= objects_a and bad_b == 0 and files_b >= files_a
        )
        report.add(
            Check(
                SECTION,
                "disk full: what was there survives",
                f"integrity_check {integrity_b}; objects {objects_a} -> {objects_b}; "
                f"stored originals {files_a} -> {files_b}, {bad_b} corrupt",
                "ok, nothing lost, 0 corrupt",
                survived and objects_a > 0,
                {"integrity_before": integrity_a},
            )
        )
        subprocess.run(["mount", "-o", f"remount,size={64 * 1024}k", str(full)], check=False)
        code_c, out_c = _run_cli(["ingest", str(large)], values, sc.root, cli_timeout)
        db = Database.from_url(f"sqlite:///{db_path}")
        try:
            with db.read() as session:
                ids = [int(i) for i in session.scalars(select(Ingestion.id).order_by(Ingestion.id))]
            account = item_account(db, ids[-1:])  # the re-run
            abandoned = item_account(db, ids[1:-1])  # the run the full disk interrupted
            dup = invariants.duplicates(db)
            with db.read() as session:
                objects_c = int(
                    session.scalar(select(func.count()).select_from(DetectedObject)) or 0
                )
        finally:
            db.dispose()
        report.add(
            Check(
                SECTION,
                "disk full: re-run after space is freed",
                f"exit {code_c}; {account.done} done, {account.failed} failed, "
                f"{account.pending} pending; {objects_c} objects; duplicates "
                f"{dup.object_keys}/{dup.image_hashes}/{dup.count_mismatches}",
                "completes, 0 pending, 0 duplicates",
                code_c == 0 and account.pending == 0 and dup.ok,
                {"output": out_c[-1500:], "account": account.__dict__},
            )
        )
        report.add(
            Check(
                SECTION,
                "disk full: the interrupted ingestion",
                f"{abandoned.pending} items left pending, "
                f"{'unfinished' if abandoned.unfinished_ingestions else 'finished'} "
                "(re-running the source makes a new ingestion)",
                "0 pending (resumed, or failed with a reason)",
                abandoned.pending == 0 and not abandoned.unfinished_ingestions,
                {"account": abandoned.__dict__},
            )
        )


SCENARIOS: dict[str, Callable[[ProofConfig, PrivateServers, Path, Report], None]] = {
    "worker SIGKILL": worker_kills,
    "Redis restart": redis_restart,
    "PG terminate": pg_terminate,
    "API snapshot kill": api_snapshot_kill,
    "API upload kill": api_upload_kill,
    "disk": disk_faults,
}
