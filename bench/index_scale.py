"""Index at scale: millions of objects on one machine (the compressed tier), end to end.

    .venv/bin/python -m bench.index_scale --sizes 1000000            # ~15-25 min on 2 cores
    .venv/bin/python -m bench.index_scale --sizes 1000000 3000000 10000000 --budget-mb 2048

For each size, in a fresh data directory (``--data-dir``: kept, and reused when it already holds
that many objects):

1. *database*: ``n`` objects streamed into SQLite by :func:`bench.api.build_collection`
   (clustered unit vectors in the model's embedding dimension: ``n/1000`` centres, noise as
   large as the centres, as bench/index.py draws them; 10 objects per image, 100 classes
   independent of the clusters: one class is 1 % of the objects; executemany batches);
2. *build*: ``roisearch index rebuild`` in a subprocess, as an operator runs it (the streamed
   build: keyset pages into the vector file, training on a sample): wall time, CPU time and the
   peak resident memory of that process;
3. *serve*: ``roisearch serve`` on the same data directory (it loads the snapshot) with the
   same memory budget; search by object id over HTTP at one client, unfiltered and with a 1 %
   class filter: latency p50/p99 and the index search time the server reports for the same
   requests (``Server-Timing``: the index latency inside the serving process); then the
   server's resident memory (``VmRSS``; anonymous = the index and metadata; file = pages of
   the vector file and libraries it touched, which the kernel can drop);
4. *recall@10* against exact search: 200 stored objects as queries (each one's own id not
   counted, as in the service's "similar objects"), exact top-10 by a scan of every vector
   read back from the database page by page, approximate answers from the index as served.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console

from bench.api import API_KEY, build_collection, http_load
from bench.proof.processes import ApiServer, child_env
from bench.proof.servers import free_port
from shared.db.database import Database
from shared.index.catchup import SpaceInfo, count_objects, read_rows, stream_space
from shared.index.tuning import recall_at_k
from shared.settings import Settings, load_settings
from shared.yolov7.detector import EmbeddingSpaceSpec

console = Console()
CLASSES = 100
QUERIES = 200
REQUESTS = 1000
K = 10


@dataclass
class Row:
    n: int
    dim: int
    factory: str
    params: str
    insert_s: float | None
    build_s: float
    build_cpu_s: float
    build_peak_mb: float
    rss_mb: float
    rss_anon_mb: float
    rss_file_mb: float
    recall: float
    index_p50: float
    index_p99: float
    http_p50: float
    http_p99: float
    filtered_index_p50: float
    filtered_http_p50: float
    filtered_http_p99: float


def model_dim(settings: Settings) -> int:
    """The embedding dimension of the configured model (its space spec, no weights needed
    beyond the spec)."""
    from shared.yolov7.detector import Detector

    detector = Detector.load(settings.detector_config())
    return int(detector.space.dim)


def ensure_collection(settings: Settings, n: int, dim: int) -> tuple[int, float | None]:
    """The space id holding ``n`` objects (built now, or found from an earlier run) and the
    insertion time in seconds (None when reused)."""
    url = settings.resolved_database_url
    if settings.data_dir.joinpath("roisearch.db").exists():
        db = Database.from_url(url)
        try:
            with db.read_connection() as conn:
                if count_objects(conn, 1) == n:
                    return 1, None
        finally:
            db.dispose()
        raise SystemExit(f"{settings.data_dir} holds another collection: use a fresh --data-dir")
    space = EmbeddingSpaceSpec(
        weights_sha256="0" * 64,
        architecture="synthetic",
        layers=(0,),
        pooling="roi_align",
        input_size=640,
        dim=dim,
        class_names=tuple(f"c{i}" for i in range(CLASSES)),
    )
    began = time.perf_counter()

    def progress(done: int) -> None:
        if done % 500_000 < 20_000 or done == n:
            rate = done / (time.perf_counter() - began)
            console.print(f"  inserted {done:,} / {n:,} ({rate:,.0f} rows/s)")

    # bench/index.py's distribution: n/1000 centres, noise as large as the centres (clusters
    # that overlap: neighbours spread over several IVF lists).
    space_id = build_collection(
        settings, n, space, classes=CLASSES, progress=progress, objects_per_centre=1000, noise=1.0
    )
    return space_id, time.perf_counter() - began


def run_build(env: dict[str, str]) -> tuple[float, float, float]:
    """``roisearch index rebuild``: wall s, CPU s (user + system), peak RSS MB."""
    began = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "roisearch", "index", "rebuild"], env=env)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"index rebuild failed ({process.returncode})")
    cpu = usage.ru_utime + usage.ru_stime
    return time.perf_counter() - began, cpu, usage.ru_maxrss / 1024


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS / RssAnon / RssFile of a process, MB."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in {"VmRSS", "RssAnon", "RssFile"}:
            out[name] = int(value.split()[0]) / 1024
    return out


def exact_top(db: Database, space: SpaceInfo, queries: np.ndarray, k: int) -> np.ndarray:
    """Exact top-``k`` ids per query: int64 ``[q, k]``, streaming every vector from the DB."""
    best_scores = np.full((queries.shape[0], k), -np.inf, np.float32)
    best_ids = np.full((queries.shape[0], k), -1, np.int64)
    with db.read_connection() as conn:
        for page in stream_space(conn, space, page=50_000):
            scores = queries @ page.vectors.T
            all_scores = np.concatenate([best_scores, scores], axis=1)
            all_ids = np.concatenate([best_ids, np.broadcast_to(page.ids, scores.shape)], axis=1)
            top = np.argpartition(-all_scores, k - 1, axis=1)[:, :k]
            best_scores = np.take_along_axis(all_scores, top, axis=1)
            best_ids = np.take_along_axis(all_ids, top, axis=1)
    order = np.argsort(-best_scores, axis=1)
    return np.take_along_axis(best_ids, order, axis=1)


def measure_recall(settings: Settings, space_id: int, dim: int, n: int) -> float:
    """Recall@10 of the index (loaded from its snapshot, as a server loads it)."""
    from shared.index import IndexManager

    db = Database.from_url(settings.resolved_database_url)
    manager = IndexManager(settings, db)
    try:
        manager.sync_once()
        rng = np.random.default_rng(7)
        query_ids = np.sort(rng.choice(np.arange(1, n + 1), size=QUERIES, replace=False))
        with db.read_connection() as conn:
            rows = read_rows(conn, query_ids.tolist(), dim)
        exact = exact_top(db, SpaceInfo(space_id, "", dim), rows.vectors, K + 1)
        hits = manager.search(space_id, rows.vectors, K + 1)
        approx = np.full((len(rows), K + 1), -1, np.int64)
        for row, found in enumerate(hits):
            approx[row, : len(found)] = [h.object_id for h in found]
        return recall_at_k(approx, exact, K, rows.ids)
    finally:
        manager.stop()
        db.dispose()


def ms(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) * 1e3


def bench_size(root: Path, n: int, dim: int, budget_mb: int) -> Row:
    settings = load_settings(data_dir=root, index_memory_budget_mb=budget_mb, api_key=API_KEY)
    console.print(f"[bold]{n:,} objects[/bold] in {root}")
    space_id, insert_s = ensure_collection(settings, n, dim)
    env = dict(os.environ)
    env.update(
        {"ROISEARCH_DATA_DIR": str(root), "ROISEARCH_INDEX_MEMORY_BUDGET_MB": str(budget_mb)}
    )
    build_s, build_cpu, build_peak = run_build(env)
    console.print(f"  built in {build_s:.0f} s ({build_cpu:.0f} CPU s, peak {build_peak:.0f} MB)")

    values = {
        "data_dir": root,
        "api_key": API_KEY,
        "max_concurrent_searches": 10_000,
        "log_level": "WARNING",
        "index_memory_budget_mb": budget_mb,
    }
    with ApiServer(child_env(values), root, free_port()) as server:
        server.start(ready_timeout=600)
        assert server.proc is not None
        port = server.port
        rng = np.random.default_rng(3)
        ids = rng.integers(1, n + 1, size=REQUESTS)
        asyncio.run(http_load(port, ids, 1, 200, K))  # warm-up
        plain = asyncio.run(http_load(port, ids, 1, REQUESTS, K))
        filtered = asyncio.run(http_load(port, ids, 1, REQUESTS // 2, K, "&classes=c7"))
        memory = memory_mb(server.proc.pid)
    recall = measure_recall(settings, space_id, dim, n)
    from shared.index.snapshots import read_footer, snapshot_path

    plan = read_footer(snapshot_path(settings.index_dir, space_id))["plan"]
    tuned = {k: v for k, v in plan["params"].items() if k in {"nprobe", "tuned_recall"}}
    return Row(
        n=n,
        dim=dim,
        factory=str(plan["factory"]),
        params=", ".join(f"{k} {v}" for k, v in tuned.items()),
        insert_s=insert_s,
        build_s=build_s,
        build_cpu_s=build_cpu,
        build_peak_mb=build_peak,
        rss_mb=memory.get("VmRSS", 0.0),
        rss_anon_mb=memory.get("RssAnon", 0.0),
        rss_file_mb=memory.get("RssFile", 0.0),
        recall=recall,
        index_p50=ms(plain.index, 50),
        index_p99=ms(plain.index, 99),
        http_p50=ms(plain.latencies, 50),
        http_p99=ms(plain.latencies, 99),
        filtered_index_p50=ms(filtered.index, 50),
        filtered_http_p50=ms(filtered.latencies, 50),
        filtered_http_p99=ms(filtered.latencies, 99),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    parser.add_argument(
        "--budget-mb", type=int, default=2048, help="ROISEARCH_INDEX_MEMORY_BUDGET_MB"
    )
    parser.add_argument("--dim", type=int, default=None, help="default: the model's")
    parser.add_argument("--data-dir", type=Path, default=Path("bench-index-scale"))
    args = parser.parse_args()
    dim = args.dim or model_dim(load_settings(data_dir=args.data_dir))
    rows = []
    for n in args.sizes:
        rows.append(bench_size(args.data_dir / f"n{n}", n, dim, args.budget_mb))
        show(rows, args.budget_mb)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    console.print(f"bench process peak RSS {usage.ru_maxrss / 1024:.0f} MB")


def show(rows: list[Row], budget_mb: int) -> None:
    """A markdown table (the results doc takes it as printed)."""
    print(f"\nindex at scale: budget {budget_mb} MB, k={K}, one HTTP client, search by id\n")
    print(
        "| n | D | index | tuned | insert s | build s (CPU s) | build peak MB "
        "| serving RSS MB (anon + file) | recall@10 | index p50 / p99 ms | HTTP p50 / p99 ms "
        "| 1 % class: index p50, HTTP p50 / p99 ms |"
    )
    print("|" + "---:|" * 12)
    for r in rows:
        cells = (
            f"{r.n:,}",
            str(r.dim),
            r.factory,
            r.params,
            "reused" if r.insert_s is None else f"{r.insert_s:.0f}",
            f"{r.build_s:.0f} ({r.build_cpu_s:.0f})",
            f"{r.build_peak_mb:.0f}",
            f"{r.rss_mb:.0f} ({r.rss_anon_mb:.0f} + {r.rss_file_mb:.0f})",
            f"{r.recall:.3f}",
            f"{r.index_p50:.2f} / {r.index_p99:.2f}",
            f"{r.http_p50:.2f} / {r.http_p99:.2f}",
            f"{r.filtered_index_p50:.2f}, {r.filtered_http_p50:.2f} / {r.filtered_http_p99:.2f}",
        )
        print("| " + " | ".join(cells) + " |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
