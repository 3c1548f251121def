"""Vector index: exact Flat vs HNSW vs IVF (as roisearch builds them) vs hnswlib.

    .venv/bin/python -m bench.index                       # 10k and 100k, about 3-5 min on 2 cores
    .venv/bin/python -m bench.index --large               # adds 1M (tens of minutes: HNSW builds)
    .venv/bin/python -m bench.index --sizes 1000000 --kinds flat ivf

Data: clustered synthetic unit vectors (``--dim``, default 256; ``n/1000`` centres, at least
16, noise of the centres' norm), queries held out from the same distribution. Each roisearch
index is built the way the service builds it (``SpaceIndex.build``: train, add, tune
``nprobe``/``efSearch`` to recall@10 ≥ 0.97 on 200 held-out vectors) with every core;
searches run as the API runs them, one query at a time on one OpenMP thread, through
``SpaceIndex.search``.

Columns: build time (train + add + tune), wall and CPU (all threads); recall@10 against exact
search on the held-out queries; single-query latency p50/p99 (k=10) and p50 with a 1 %
selective filter (exact-k path), measured as the searching thread's CPU time so that other
load on a shared machine does not inflate them (on an idle core, wall ≈ CPU time);
bytes per object of the index (serialized FAISS index + filter metadata) and in total with
the database row (measured on SQLite; ``--pg-url`` adds PostgreSQL). ``auto`` marks the type the
automatic policy picks at that size.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
from rich.console import Console
from rich.table import Table

from shared.index.cursor import Cursor
from shared.index.filters import candidate_mask
from shared.index.metadata import SLOT_BYTES
from shared.index.policy import (
    HNSW_EF_CONSTRUCTION,
    HNSW_M,
    RECALL_TARGET,
    IndexPlan,
    IndexPolicy,
    ivf_lists,
)
from shared.index.rows import ObjectRows
from shared.index.search_filter import SearchFilter
from shared.index.space_index import SpaceIndex
from shared.index.tuning import EF_STEPS, exact_neighbours, recall_at_k

K = 10
LATENCY_QUERIES = 400
RECALL_QUERIES = 1000


@dataclass
class Row:
    n: int
    name: str
    auto: bool
    build_s: float
    build_cpu: float
    params: str
    recall: float
    p50_ms: float
    p99_ms: float
    filtered_ms: float | None
    index_bytes: float


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    clusters = max(16, n // 1000)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        labels = rng.integers(0, clusters, size=stop - start)
        noise = rng.normal(size=(stop - start, dim)).astype(np.float32) / np.sqrt(dim)
        out[start:stop] = centres[labels] + noise
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def rows_of(x: np.ndarray, seed: int) -> ObjectRows:
    n = x.shape[0]
    rng = np.random.default_rng(seed)
    class_ids = rng.integers(0, 100, size=(n,)).astype(np.int32)  # one class = 1 %
    scores = rng.uniform(0.25, 1, (n,)).astype(np.float32)
    sides = rng.uniform(8, 400, (n,)).astype(np.float32)
    return ObjectRows(
        ids=np.arange(1, n + 1, dtype=np.int64),
        image_ids=np.arange(n, dtype=np.int64) // 8,
        class_ids=class_ids,
        scores=scores,
        x1=np.zeros(n, np.float32),
        y1=np.zeros(n, np.float32),
        x2=sides,
        y2=sides,
        sides=sides,
        vectors=x,
    )


def percentiles(samples: list[float]) -> tuple[float, float]:
    a = np.asarray(samples) * 1000
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def bench_roisearch(
    n: int, plan: IndexPlan, rows: ObjectRows, queries: np.ndarray, exact: np.ndarray, auto: bool
) -> Row:
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    start, cpu = time.perf_counter(), time.process_time()
    space = SpaceIndex.build(1, "bench", rows.dim, plan, rows, Cursor())
    build_s, build_cpu = time.perf_counter() - start, time.process_time() - cpu
    faiss.omp_set_num_threads(1)
    found = np.full((queries.shape[0], K), -1, np.int64)
    for i, hits in enumerate(space.search(queries, K, None, None)):
        found[i, : len(hits)] = [h.object_id for h in hits]
    recall = recall_at_k(found, exact, K, np.full(queries.shape[0], -1))
    times = []
    for q in queries[:LATENCY_QUERIES]:
        t = time.thread_time()
        space.search(q[None], K, None, None)
        times.append(time.thread_time() - t)
    mask = candidate_mask(space.table, SearchFilter(class_ids=[7]), None)
    filtered = []
    for q in queries[:100]:
        t = time.thread_time()
        got = space.search(q[None], K, mask, None)
        filtered.append(time.thread_time() - t)
        assert len(got[0]) == K
    index_bytes = faiss.serialize_index(space.index).nbytes / n + SLOT_BYTES
    p50, p99 = percentiles(times)
    params = {k: v for k, v in space.plan.params.items() if k in {"nprobe", "efSearch"}}
    return Row(
        n,
        f"roisearch {plan.factory}",
        auto,
        build_s,
        build_cpu,
        ", ".join(f"{k} {v}" for k, v in params.items()) or "-",
        recall,
        p50,
        p99,
        float(np.median(filtered)) * 1000,
        index_bytes,
    )


def bench_hnswlib(n: int, rows: ObjectRows, queries: np.ndarray, exact: np.ndarray) -> Row | None:
    try:
        import hnswlib
    except ImportError:
        return None
    dim = rows.dim
    start, cpu = time.perf_counter(), time.process_time()
    index = hnswlib.Index(space="ip", dim=dim)
    index.init_index(max_elements=n, M=HNSW_M, ef_construction=HNSW_EF_CONSTRUCTION)
    index.set_num_threads(os.cpu_count() or 1)
    # Same tuning rule as roisearch: hold 200 vectors out, smallest ef reaching the target
    # recall on them, then add them.
    rng = np.random.default_rng(0)
    held = np.zeros(n, bool)
    held[rng.choice(n, size=200, replace=False)] = True
    index.add_items(rows.vectors[~held], rows.ids[~held])
    truth = exact_neighbours(rows.vectors[~held], rows.ids[~held], rows.vectors[held], K)
    unseen = np.full(int(held.sum()), -1)
    ef = EF_STEPS[-1]
    for step in EF_STEPS:
        index.set_ef(step)
        labels, _ = index.knn_query(rows.vectors[held], k=K)
        if recall_at_k(labels.astype(np.int64), truth, K, unseen) >= RECALL_TARGET:
            ef = step
            break
    index.add_items(rows.vectors[held], rows.ids[held])
    index.set_ef(ef)
    build_s, build_cpu = time.perf_counter() - start, time.process_time() - cpu
    index.set_num_threads(1)
    labels, _ = index.knn_query(queries, k=K)
    recall = recall_at_k(labels.astype(np.int64), exact, K, np.full(queries.shape[0], -1))
    times = []
    for q in queries[:LATENCY_QUERIES]:
        t = time.thread_time()
        index.knn_query(q[None], k=K)
        times.append(time.thread_time() - t)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "h.bin"
        index.save_index(str(path))
        size = path.stat().st_size
    p50, p99 = percentiles(times)
    return Row(
        n,
        f"hnswlib M{HNSW_M}",
        False,
        build_s,
        build_cpu,
        f"ef {ef}",
        recall,
        p50,
        p99,
        None,
        size / n,
    )


def _insert_objects(db: object, dim: int, vectors: np.ndarray) -> None:
    """Rows shaped like the service's (one image per 500 objects, 80 classes), in a new space."""
    from bench.collection import insert_images, insert_objects, synthetic_spec
    from shared.db.database import Database
    from shared.ingestion.spaces import ensure_space

    assert isinstance(db, Database)
    spec = synthetic_spec(dim, [f"class{i}" for i in range(80)], architecture="yolov7", unique=True)
    n = vectors.shape[0]
    with db.begin() as session:
        space_id = ensure_space(session, spec)
        image_ids = insert_images(
            session, (n + 499) // 500, source="bench.zip", width=1920, height=1080, nbytes=500_000
        )
        insert_objects(
            session,
            space_id,
            image_ids,
            vectors,
            np.arange(n) % 500 % 80,
            spec.class_names,
            per_image=500,
            box=(10.0, 20.0, 110.0, 220.0),
            score=0.5,
        )


def db_bytes_per_object(dim: int, pg_url: str | None) -> dict[str, float]:
    """Bytes per object in the database (table, TOAST and indexes), measured on 5k rows."""
    from sqlalchemy import text

    from shared.db import migrations
    from shared.db.database import Database

    n = 5000
    x = clustered(n, dim, seed=9)
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        migrations.upgrade(f"sqlite:///{path}")

        def checkpointed_size() -> int:
            with sqlite3.connect(path) as raw:
                raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return path.stat().st_size

        before = checkpointed_size()
        db = Database.from_url(f"sqlite:///{path}")
        _insert_objects(db, dim, x)
        db.dispose()
        out["sqlite"] = (checkpointed_size() - before) / n
    if pg_url:
        migrations.upgrade(pg_url)
        db = Database.from_url(pg_url)
        size = text("SELECT pg_total_relation_size('objects')")
        with db.read() as session:
            before = int(session.execute(size).scalar_one())
        _insert_objects(db, dim, x)
        with db.read() as session:
            after = int(session.execute(size).scalar_one())
        db.dispose()
        out["postgresql"] = (after - before) / n
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--large", action="store_true", help="add 1,000,000 vectors")
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--kinds", nargs="+", default=["flat", "hnsw", "ivf", "hnswlib"])
    parser.add_argument("--pg-url", default=None, help="also measure PostgreSQL row size")
    args = parser.parse_args()
    sizes = sorted(set(args.sizes + ([1_000_000] if args.large else [])))
    console = Console(width=200)
    policy = IndexPolicy()
    db_bytes = db_bytes_per_object(args.dim, args.pg_url)
    rows_out: list[Row] = []
    for n in sizes:
        console.print(f"[bold]{n:,} vectors, d={args.dim}[/bold]")
        data = clustered(n + RECALL_QUERIES, args.dim, seed=n)
        base, queries = data[:n], np.ascontiguousarray(data[n:])
        rows = rows_of(base, seed=1)
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        exact = exact_neighbours(base, rows.ids, queries, K)
        auto = policy.choose(n, args.dim).kind
        plans = {
            "flat": IndexPlan("flat", "Flat"),
            "hnsw": IndexPlan(
                "hnsw", f"HNSW{HNSW_M}", params={"efConstruction": HNSW_EF_CONSTRUCTION}
            ),
            "ivf": IndexPlan("ivf", f"IVF{ivf_lists(n)},Flat"),
        }
        for kind in args.kinds:
            if kind == "hnswlib":
                row = bench_hnswlib(n, rows, queries, exact)
            else:
                row = bench_roisearch(n, plans[kind], rows, queries, exact, kind == auto)
            if row is not None:
                rows_out.append(row)
                console.print(
                    f"  {row.name}: build {row.build_s:.1f} s ({row.build_cpu:.1f} CPU s), "
                    f"recall {row.recall:.3f}, p50 {row.p50_ms:.3f} ms"
                )
    table = Table(
        title=f"vector index, d={args.dim}, k={K}, single query on 1 thread "
        f"({os.cpu_count()} cores for builds)"
    )
    for column in (
        "n",
        "index",
        "auto",
        "build s",
        "build CPU s",
        "tuned",
        "recall@10",
        "p50 ms",
        "p99 ms",
        "1% filter p50 ms",
        "index B/obj",
        *(f"+{name} B/obj" for name in db_bytes),
    ):
        table.add_column(column, justify="right")
    for r in rows_out:
        table.add_row(
            f"{r.n:,}",
            r.name,
            "✓" if r.auto else "",
            f"{r.build_s:.1f}",
            f"{r.build_cpu:.1f}",
            r.params,
            f"{r.recall:.3f}",
            f"{r.p50_ms:.3f}",
            f"{r.p99_ms:.3f}",
            f"{r.filtered_ms:.2f}" if r.filtered_ms is not None else "-",
            f"{r.index_bytes:,.0f}",
            *(f"{r.index_bytes + b:,.0f}" for b in db_bytes.values()),
        )
    console.print(table)


if __name__ == "__main__":
    main()
