"""Load: search by object id with 1/8/32/64 concurrent clients for a fixed time each, against
a large seeded collection, while an ingestion runs (a worker writing new objects that the
API's index catches up with).

Clients are asyncio coroutines on keep-alive connections (``bench.api.RawClient``: it parses
only the status line and Content-Length, so that on two shared cores the client costs as little
CPU as possible and the figures are the server's). Every response is classified: 200 served,
503/429 shed (the API's ``max_concurrent_searches`` bound), anything else (or a broken
connection) an error. The service must shed rather than queue without bound: above the limit
some requests are refused at once, and the accepted ones keep a bounded latency.

The same collection also gives the index figures of the summary: the index's search latency
and recall@10 against exact search (FAISS ``IndexFlatIP``) on the same vectors.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import func, select

from bench.api import API_KEY as BENCH_KEY
from bench.api import RawClient
from bench.proof import invariants
from bench.proof.config import ProofConfig, Scenario
from bench.proof.corpus import scene_archive
from bench.proof.faults.scaffold import enqueue_source, wait_quiet, wait_workers
from bench.proof.processes import ApiServer, WorkerPool, child_env
from bench.proof.results import Check, Report
from bench.proof.seeding import seed_objects
from bench.proof.servers import PrivateServers, free_port
from shared.db.database import Database
from shared.db.models import DetectedObject

if TYPE_CHECKING:
    from shared.yolov7.detector import EmbeddingSpaceSpec

SECTION = "load"
SHED = {429, 503}


@dataclass
class Level:
    clients: int
    seconds: float
    ok: list[float] = field(default_factory=list)  # latencies of served requests, s
    shed: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return len(self.ok) / self.seconds

    def pct(self, q: float, values: list[float] | None = None) -> float:
        data = self.ok if values is None else values
        return float(np.percentile(data, q)) * 1e3 if data else float("nan")


@dataclass
class LoadFigures:
    """What the summary needs from this section."""

    objects: int = 0
    levels: list[Level] = field(default_factory=list)
    index_p50_ms: float = float("nan")
    exact_p50_ms: float = float("nan")
    recall_at_10: float = float("nan")
    index_kind: str = ""


async def _client(port: int, ids: np.ndarray, level: Level, deadline: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    client = RawClient("127.0.0.1", port)
    try:
        while time.perf_counter() < deadline:
            object_id = int(ids[int(rng.integers(0, len(ids)))])
            began = time.perf_counter()
            try:
                status, _, _ = await client.get(f"/v1/objects/{object_id}/similar?k=10")
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                key = type(exc).__name__
                level.errors[key] = level.errors.get(key, 0) + 1
                await client.close()
                client = RawClient("127.0.0.1", port)
                continue
            elapsed = time.perf_counter() - began
            if status == 200:
                level.ok.append(elapsed)
            elif status in SHED:
                level.shed.append(elapsed)
                await asyncio.sleep(0.01)  # a polite client backs off a little
            else:
                level.errors[str(status)] = level.errors.get(str(status), 0) + 1
    finally:
        await client.close()


async def _run_level(port: int, ids: np.ndarray, clients: int, seconds: float) -> Level:
    level = Level(clients, seconds)
    deadline = time.perf_counter() + seconds
    await asyncio.gather(*(_client(port, ids, level, deadline, i) for i in range(clients)))
    return level


async def _burst(port: int, ids: np.ndarray, n: int) -> tuple[int, int, int]:
    """``n`` requests at the same instant on ``n`` connections: (served, shed, other)."""
    clients = [RawClient("127.0.0.1", port) for _ in range(n)]
    try:
        for client in clients:  # connect first, so that the requests really arrive together
            client.reader, client.writer = await asyncio.open_connection("127.0.0.1", port)
        results = await asyncio.gather(
            *(
                c.get(f"/v1/objects/{int(ids[i % len(ids)])}/similar?k=10")
                for i, c in enumerate(clients)
            ),
            return_exceptions=True,
        )
    finally:
        for client in clients:
            await client.close()
    statuses = [r[0] if isinstance(r, tuple) else 0 for r in results]
    return (
        sum(1 for s in statuses if s == 200),
        sum(1 for s in statuses if s in SHED),
        sum(1 for s in statuses if s != 200 and s not in SHED),
    )


def _space_of_model(config: ProofConfig) -> EmbeddingSpaceSpec:
    """The embedding space the worker will write to, so seeded and ingested objects mix."""
    from shared.settings import load_settings
    from shared.yolov7.detector import Detector

    settings = load_settings(weights=config.weights, img_size=config.img_size, data_dir=Path())
    return Detector.load(settings.detector_config()).space


def index_figures(settings: Any, db: Database, space_id: int, figures: LoadFigures) -> None:
    """The index's own latency and recall@10 against exact search, same vectors, 1 thread."""
    import faiss

    from shared.index import IndexManager

    faiss.omp_set_num_threads(1)
    with db.read() as session:
        rows = session.execute(
            select(DetectedObject.id, DetectedObject.vector)
            .where(DetectedObject.space_id == space_id)
            .order_by(DetectedObject.id)
        ).all()
    ids = np.asarray([r.id for r in rows], np.int64)
    vectors = np.stack([np.frombuffer(r.vector, "<f4") for r in rows]).astype(np.float32)
    exact = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1]))
    exact.add_with_ids(vectors, ids)
    manager = IndexManager(settings, db)
    manager.sync_once()
    try:
        rng = np.random.default_rng(5)
        queries = vectors[rng.choice(len(vectors), size=min(300, len(vectors)), replace=False)]
        index_t: list[float] = []
        exact_t: list[float] = []
        hits = 0
        for query in queries:
            q = query[None, :]
            began = time.perf_counter()
            got = manager.search(space_id, q, 10, None)[0]
            index_t.append(time.perf_counter() - began)
            began = time.perf_counter()
            _, want = exact.search(q, 10)
            exact_t.append(time.perf_counter() - began)
            hits += len({int(h.object_id) for h in got} & {int(i) for i in want[0]})
        figures.index_p50_ms = float(np.median(index_t)) * 1e3
        figures.exact_p50_ms = float(np.median(exact_t)) * 1e3
        figures.recall_at_10 = hits / (10 * len(queries))
        status = manager.status(space_id)
        figures.index_kind = str(getattr(status, "factory", None) or getattr(status, "kind", ""))
    finally:
        manager.stop()


def run(config: ProofConfig, servers: PrivateServers, base: Path, report: Report) -> LoadFigures:
    limits = {"max_concurrent_searches": config.shed_limit, "index_snapshot_interval_s": 3600.0}
    sc = Scenario.create("load", config, servers, base, api_key=BENCH_KEY, **limits)
    settings = sc.settings()
    figures = LoadFigures(objects=config.load_objects)
    began = time.monotonic()
    space_id = seed_objects(settings, config.load_objects, _space_of_model(config))
    seeded_s = time.monotonic() - began
    db = Database.from_url(settings.resolved_database_url)
    archive = scene_archive(sc.root / "scenes.zip", config.load_ingest_images, seed=8)
    api = ApiServer(child_env(sc.env_values("api")), sc.root, free_port())
    try:
        with db.read() as session:
            ids = np.asarray(
                list(
                    session.scalars(
                        select(DetectedObject.id).where(DetectedObject.space_id == space_id)
                    )
                ),
                np.int64,
            )
        api_start_s = api.start(ready_timeout=600)
        with WorkerPool(1, child_env(sc.env_values("worker")), sc.root) as pool:
            wait_workers(settings, pool, 1, timeout=180)
            asyncio.run(_run_level(api.port, ids, 4, 1.0))  # warm-up
            ingestion_id = enqueue_source(settings, db, archive)
            for clients in config.load_levels:
                figures.levels.append(
                    asyncio.run(_run_level(api.port, ids, clients, config.load_seconds))
                )
            during = invariants.item_account(db, [ingestion_id])
            burst = asyncio.run(_burst(api.port, ids, 4 * config.shed_limit))
            finished, _ = wait_quiet(
                db, [ingestion_id], stall_s=75.0, hard_s=config.scenario_timeout_s
            )
        with db.read() as session:
            total = int(session.scalar(select(func.count()).select_from(DetectedObject)) or 0)
        for level in figures.levels:
            errors = sum(level.errors.values())
            report.add(
                Check(
                    SECTION,
                    f"{level.clients:>2} clients, {level.seconds:.0f} s",
                    f"{level.rps:.0f} req/s, p50 {level.pct(50):.1f} ms, "
                    f"p99 {level.pct(99):.1f} ms; "
                    f"shed {len(level.shed)} (p99 {level.pct(99, level.shed):.1f} ms); "
                    f"errors {errors}" + (f" {level.errors}" if errors else ""),
                    "0 errors",
                    errors == 0 and len(level.ok) > 0,
                    {
                        "clients": level.clients,
                        "rps": level.rps,
                        "p50_ms": level.pct(50),
                        "p99_ms": level.pct(99),
                        "shed": len(level.shed),
                        "errors": level.errors,
                    },
                )
            )
        above = [lv for lv in figures.levels if lv.clients > config.shed_limit]
        shed_above = sum(len(lv.shed) for lv in above)
        report.add(
            Check(
                SECTION,
                "sheds instead of queueing",
                f"limit {config.shed_limit} in flight: {shed_above} shed at "
                f"{'/'.join(str(lv.clients) for lv in above)} clients; burst of "
                f"{4 * config.shed_limit}: {burst[0]} served, {burst[1]} shed, {burst[2]} other",
                "503s above the limit, 0 other",
                shed_above > 0 and burst[1] > 0 and burst[2] == 0,
                {"burst": burst},
            )
        )
        report.add(
            Check(
                SECTION,
                "collection and concurrent ingestion",
                f"{config.load_objects:,} seeded objects in {seeded_s:.0f} s, API ready in "
                f"{api_start_s:.0f} s; ingestion of {config.load_ingest_images} images "
                f"{'completed' if finished else 'DID NOT complete'} "
                f"({during.done + during.failed} processed while under load); {total:,} objects",
                "ingestion completes",
                finished,
            )
        )
        report.checks.extend(
            invariants.checks(
                SECTION,
                "load",
                settings,
                db,
                sc.root / "fresh-index",
                ingestion_ids=[ingestion_id],
                api=(api.url, BENCH_KEY),
                sample=2000,
            )
        )
        api.stop()
        try:
            index_figures(sc.settings(data_dir=sc.root / "index-figures"), db, space_id, figures)
        except Exception as exc:
            report.error(SECTION, "index latency and recall", exc)
    finally:
        api.stop()
        db.dispose()
    return figures
