"""HTTP search latency vs the bare index search, and query-by-image latency.

    .venv/bin/python -m bench.api --objects 100000

Builds a SQLite collection of N objects (clustered unit vectors in the model's embedding space,
so that query-by-image also searches them), starts ``roisearch serve`` in a subprocess, and
measures through HTTP with 1, 8 and 32 concurrent asyncio clients: search-by-object-id p50/p99
latency and requests/s. Query-by-image latency is measured with and without a box. Prints tables.

HTTP overhead = each request's latency minus the index search time the server reports for
that same request (``Server-Timing: index;dur=…``), p50 over the requests: the search runs in
the serving process, with its caches and threads, so it is compared with itself. The same
queries are also timed against ``IndexManager.search`` in this quiet process (the "index
alone" floor, shown for reference).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import numpy as np
from PIL import Image as PILImage
from rich.console import Console
from rich.table import Table

from bench.collection import insert_batches, insert_images
from bench.proof.processes import ApiServer, child_env
from bench.proof.servers import free_port
from shared.db import migrations
from shared.db.database import Database
from shared.db.models import DetectedObject
from shared.ingestion.spaces import ensure_space
from shared.settings import Settings, load_settings

if TYPE_CHECKING:
    from shared.yolov7.detector import EmbeddingSpaceSpec

console = Console()
API_KEY = "bench-key"
OBJECTS_PER_IMAGE = 10
BATCH = 20_000


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def build_collection(
    settings: Settings,
    n: int,
    space: EmbeddingSpaceSpec,
    *,
    classes: int | None = None,
    progress: Callable[[int], None] | None = None,
    objects_per_centre: int = 100,
    noise: float = 0.3,
) -> int:
    """Insert ``n`` clustered unit vectors (object ids 1..n) into a fresh database, ``BATCH``
    rows per transaction; returns the space id. Vectors: ``n / objects_per_centre`` random
    centres plus ``noise`` times a random vector, normalised. Class of object ``i``: its
    cluster modulo the space's first three classes, or ``i % classes`` (independent of its
    cluster) when ``classes`` is given. ``progress(rows inserted)`` after each batch."""
    migrations.upgrade(settings.resolved_database_url)
    db = Database.from_url(settings.resolved_database_url)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(max(1, n // objects_per_centre), space.dim)).astype(np.float32)
    images = (n + OBJECTS_PER_IMAGE - 1) // OBJECTS_PER_IMAGE
    with db.begin() as session:
        space_id = ensure_space(session, space)
        image_ids = insert_images(session, images, source="bench")
    cluster_classes = min(3, len(space.class_names))

    def batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, n, BATCH):
            count = min(BATCH, n - start)
            labels = rng.integers(0, len(centres), size=count)
            vectors = centres[labels] + noise * rng.normal(size=(count, space.dim)).astype(
                np.float32
            )
            class_ids = (
                labels % cluster_classes
                if classes is None
                else np.arange(start, start + count) % classes
            )
            yield vectors / np.linalg.norm(vectors, axis=1, keepdims=True), class_ids
            if progress is not None:
                progress(start + count)

    insert_batches(
        db, space_id, image_ids, batches(), space.class_names, per_image=OBJECTS_PER_IMAGE
    )
    db.dispose()
    return space_id


class RawClient:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams.

    httpx costs ~0.5-1 ms of client CPU per request on these cores, which would be counted as
    server latency; this client parses only the status line and Content-Length.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, bytes, float | None]:
        """Status, body and the server's index search time in seconds (``Server-Timing``)."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        request = f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\nX-API-Key: {API_KEY}\r\n\r\n"
        self.writer.write(request.encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        index_s = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"server-timing":
                index_s = server_index_seconds(value.decode())
        body = await self.reader.readexactly(length)
        return status, body, index_s

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


def server_index_seconds(header: str) -> float | None:
    """``index;dur=0.256, handler;dur=1.0`` → 0.000256."""
    for metric in header.split(","):
        name, _, params = metric.strip().partition(";")
        if name == "index" and params.startswith("dur="):
            return float(params[4:]) / 1e3
    return None


@dataclass
class Load:
    latencies: list[float]  # seconds per request
    overheads: list[float]  # latency minus the server's index time, same request
    index: list[float]  # the server's index time per request
    rate: float  # requests/s


async def http_load(
    port: int, ids: np.ndarray, concurrency: int, requests: int, k: int, query: str = ""
) -> Load:
    """``requests`` searches by id (``ids`` in turn) from ``concurrency`` clients; ``query``
    is appended to each URL (filters: ``&classes=c7``)."""
    load = Load([], [], [], 0.0)
    cursor = 0

    async def worker() -> None:
        nonlocal cursor
        client = RawClient("127.0.0.1", port)
        try:
            while cursor < requests:
                object_id = int(ids[cursor % len(ids)])
                cursor += 1
                start = time.perf_counter()
                status, body, index_s = await client.get(
                    f"/v1/objects/{object_id}/similar?k={k}{query}"
                )
                latency = time.perf_counter() - start
                if status != 200 or index_s is None:
                    raise RuntimeError(f"HTTP {status} (Server-Timing {index_s}): {body[:200]!r}")
                load.latencies.append(latency)
                load.index.append(index_s)
                load.overheads.append(latency - index_s)
        finally:
            await client.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    load.rate = len(load.latencies) / (time.perf_counter() - began)
    return load


def image_bytes() -> bytes:
    rng = np.random.default_rng(1)
    array = np.full((480, 640, 3), 100, dtype=np.uint8)
    array[100:300, 200:400] = rng.integers(0, 255, size=(200, 200, 3), dtype=np.uint8)
    out = io.BytesIO()
    PILImage.fromarray(array).save(out, format="JPEG", quality=90)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=2000, help="HTTP requests per level")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--weights", type=Path, default=None, help="default: demo detector")
    parser.add_argument("--image-queries", type=int, default=10)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()

    import faiss
    import torch

    from shared.index import IndexManager
    from shared.yolov7.detector import Detector

    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    faiss.omp_set_num_threads(1)
    root = args.data_dir or Path(tempfile.mkdtemp(prefix="roisearch-bench-api-"))
    settings = load_settings(data_dir=root, api_key=API_KEY, max_concurrent_searches=10_000)
    if args.weights is not None:
        settings = load_settings(
            data_dir=root, api_key=API_KEY, weights=args.weights, max_concurrent_searches=10_000
        )
    spec = Detector.load(settings.detector_config()).space
    t0 = time.perf_counter()
    space_id = build_collection(settings, args.objects, spec)
    console.print(
        f"collection: {args.objects} objects, dim {spec.dim} in {time.perf_counter() - t0:.1f} s"
    )

    # The floor: the index search alone, in this process, same queries.
    db = Database.from_url(settings.resolved_database_url)
    index = IndexManager(settings, db)
    t0 = time.perf_counter()
    index.sync_once()
    console.print(f"index built in {time.perf_counter() - t0:.1f} s: {index.status(space_id)}")
    rng = np.random.default_rng(2)
    ids = rng.integers(1, args.objects + 1, size=args.requests)
    with db.read() as session:
        vectors = {
            int(i): np.frombuffer(session.get(DetectedObject, int(i)).vector, "<f4")  # type: ignore[union-attr]
            for i in ids[:500]
        }
    floor: list[float] = []
    for vector in vectors.values():
        start = time.perf_counter()
        index.search(space_id, vector[None, :].astype(np.float32), args.k + 1, None)
        floor.append(time.perf_counter() - start)
    index.stop()
    db.dispose()

    values = {
        "data_dir": root,
        "api_key": API_KEY,
        "max_concurrent_searches": 10_000,
        "log_level": "WARNING",
        "weights": args.weights,
    }
    with ApiServer(child_env(values), root, free_port()) as server:
        server.start(ready_timeout=600)
        port, url = server.port, server.url
        table = Table(title=f"search by object id, {args.objects} objects, k={args.k}")
        columns = ("clients", "p50 ms", "p99 ms", "req/s", "server index p50 ms")
        for column in (*columns, "HTTP overhead p50 ms"):
            table.add_column(column, justify="right")
        floor_p50 = percentile(floor, 50) * 1e3
        asyncio.run(http_load(port, ids, 4, 200, args.k))  # warm-up
        for concurrency in (1, 8, 32):
            load = asyncio.run(http_load(port, ids, concurrency, args.requests, args.k))
            table.add_row(
                str(concurrency),
                f"{percentile(load.latencies, 50) * 1e3:.2f}",
                f"{percentile(load.latencies, 99) * 1e3:.2f}",
                f"{load.rate:.0f}",
                f"{percentile(load.index, 50) * 1e3:.2f}",
                f"{percentile(load.overheads, 50) * 1e3:.2f}",
            )
        console.print(table)
        console.print(
            f"index search alone: p50 {floor_p50:.2f} ms, p99 {percentile(floor, 99) * 1e3:.2f} ms"
        )

        data = image_bytes()
        headers = {"X-API-Key": API_KEY}
        image_table = Table(title="query by image (640x480 JPEG), sequential")
        for column in ("mode", "first (model load) s", "p50 ms", "p99 ms"):
            image_table.add_column(column, justify="right")
        with httpx.Client(base_url=url, headers=headers, timeout=600) as client:
            for mode, form in (("box", {"boxes": "200,100,400,300"}), ("detect all", {})):
                times: list[float] = []
                first = 0.0
                for i in range(args.image_queries + 1):
                    start = time.perf_counter()
                    response = client.post(
                        "/v1/search", files={"image": ("q.jpg", data)}, data=form
                    )
                    elapsed = time.perf_counter() - start
                    if response.status_code != 200:
                        raise RuntimeError(response.text[:300])
                    if i == 0:
                        first = elapsed
                    else:
                        times.append(elapsed)
                image_table.add_row(
                    mode,
                    f"{first:.2f}",
                    f"{statistics.median(times) * 1e3:.0f}",
                    f"{percentile(times, 99) * 1e3:.0f}",
                )
        console.print(image_table)


if __name__ == "__main__":
    main()
