"""Faults of the API process: SIGKILLed while it writes an index snapshot, and while it
receives (saves, plans) an upload."""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import httpx
from sqlalchemy import select

from bench.proof.config import API_KEY, ProofConfig
from bench.proof.corpus import scene_archive, zip_of
from bench.proof.faults.scaffold import (
    SECTION,
    World,
    completion,
    in_world,
    stall_s,
    wait_quiet,
)
from bench.proof.processes import ApiServer, WorkerPool, child_env
from bench.proof.results import Check, Report
from bench.proof.servers import free_port
from shared.db.database import Database
from shared.db.models import Ingestion, IngestionStatus

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


def _snapshot_kills(config: ProofConfig, world: World, report: Report) -> None:
    from bench.proof.seeding import seed_objects, synthetic_space

    name, sc, settings, db = world.name, world.scenario, world.settings, world.db
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
        # no ingestion items in this scenario: not the first check
        report.checks.extend(world.invariant_checks(api=(api.url, API_KEY), sample=2000)[1:])
    finally:
        stop.set()
        if trickle.is_alive():
            trickle.join()
        api.stop()


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


def _upload_kills(config: ProofConfig, world: World, report: Report) -> None:
    name, sc, settings, db = world.name, world.scenario, world.settings, world.db
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
                db, [final_id], stall_s=stall_s(config), hard_s=config.scenario_timeout_s
            )
            # The killed uploads' ingestions are re-planned by a worker's (or the API's)
            # re-planning pass and queued behind the retried one: give them the same time to
            # finish before calling any of them stuck.
            wait_quiet(
                db,
                sorted(_ingestion_ids(db)),
                stall_s=stall_s(config),
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
            completion(
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
            world.invariant_checks(ingestion_ids=[final_id], api=(api.url, API_KEY))
        )
    finally:
        api.stop()


api_snapshot_kill = in_world(
    "API SIGKILL during snapshot", _snapshot_kills, index_snapshot_interval_s=1.0
)
api_upload_kill = in_world("API SIGKILL during upload", _upload_kills, max_archive_members=10_000)
