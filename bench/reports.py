"""Cluster report and export: wall time and peak memory at N objects.

    .venv/bin/python -m bench.reports --objects 100000 1000000 --dim 256

Builds a SQLite collection of N objects per size (unit vectors around one centre per class,
0.5 % planted near-duplicates; no image files, so the HTML page shows crop placeholders), then
runs each measurement in a fresh subprocess: the cluster report with automatic k, with k=50
and per class, a streamed Parquet export and a directory export (.npy + CSV + Parquet, split).
Memory: ``peak anon`` is the largest anonymous resident memory seen (sampled every 50 ms: the
process's own heap, what must stay bounded); ``peak RSS`` also counts file pages mapped into
the process (the near-duplicate vector store is a memory-mapped file the kernel may evict).
Prints one JSON line per measurement (with the report's stage timings), then a table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from sqlalchemy import insert

from bench.collection import insert_batches, insert_images, synthetic_spec
from shared.db import migrations
from shared.db.database import Database
from shared.db.models import Ingestion, IngestionItem
from shared.ingestion.spaces import ensure_space

console = Console()
OBJECTS_PER_IMAGE = 10
INSERT_BATCH = 20_000
CLASSES = 20
MEASUREMENTS = ("report-auto-k", "report-k50-per-class", "export-parquet-stream", "export-dir")


def build_collection(url: str, n: int, dim: int) -> None:
    migrations.upgrade(url)
    db = Database.from_url(url)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(CLASSES, dim)).astype(np.float32)
    spec = synthetic_spec(dim, [f"class{i}" for i in range(CLASSES)], architecture="bench")
    images = (n + OBJECTS_PER_IMAGE - 1) // OBJECTS_PER_IMAGE
    with db.begin() as session:
        space_id = ensure_space(session, spec)
        ingestion = Ingestion(source="bench", source_kind="folder", status="done")
        session.add(ingestion)
        session.flush()
        image_ids = insert_images(session, images, source="bench")
        session.execute(
            insert(IngestionItem),
            [
                {
                    "ingestion_id": ingestion.id,
                    "member": f"{i}.jpg",
                    "seq": i,
                    "chunk": 0,
                    "status": "done",
                    "image_id": image_id,
                }
                for i, image_id in enumerate(image_ids)
            ],
        )

    def batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        previous: np.ndarray | None = None
        for start in range(0, n, INSERT_BATCH):
            count = min(INSERT_BATCH, n - start)
            labels = rng.integers(0, CLASSES, size=count)
            vectors = centres[labels] + 1.2 * rng.normal(size=(count, dim)).astype(np.float32)
            if previous is not None:  # near-duplicates of objects of the previous batch
                planted = rng.integers(0, count, size=count // 200)
                vectors[planted] = previous[planted] + 0.01 * rng.normal(size=(planted.size, dim))
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            previous = vectors
            yield vectors, labels

    insert_batches(
        db, space_id, image_ids, batches(), spec.class_names, per_image=OBJECTS_PER_IMAGE
    )
    db.dispose()


class MemorySampler:
    """Largest RssAnon / VmRSS of this process, sampled from /proc every 50 ms."""

    def __init__(self) -> None:
        self.peak_anon_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _read(self) -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
        return 0

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak_anon_kb = max(self.peak_anon_kb, self._read())

    def __enter__(self) -> MemorySampler:
        self.peak_anon_kb = self._read()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_anon_kb = max(self.peak_anon_kb, self._read())


def measure(kind: str, url: str, data_dir: Path) -> dict[str, Any]:
    """Run one measurement in this (fresh) process; returns seconds and memory figures."""
    import resource

    from shared.export.files import export_directory
    from shared.export.rows import ExportSpec
    from shared.export.splits import SplitSpec
    from shared.export.streams import stream_parquet
    from shared.reports.job import create_cluster_report, run_cluster_report
    from shared.reports.params import ClusterParams
    from shared.reports.selection import resolve_selection
    from shared.settings import load_settings

    settings = load_settings(data_dir=data_dir, database_url=url)
    db = Database.from_url(url)
    extra: dict[str, Any] = {}
    with MemorySampler() as sampler:
        before_kb = sampler.peak_anon_kb
        start = time.perf_counter()
        if kind.startswith("report"):
            params = (
                ClusterParams(k_max=20)
                if kind == "report-auto-k"
                else ClusterParams(k=50 // CLASSES + 1, per_class=True)
            )
            report_id = create_cluster_report(db, params)
            status = run_cluster_report(db, settings.report_config(), report_id)
            from shared.db.models import Report

            with db.read() as session:
                report = session.get(Report, report_id)
                assert report is not None
                result = report.result or {}
                extra = {
                    "status": status,
                    "error": report.error_message,
                    "k": result.get("k", {}).get("total"),
                    "purity": result.get("overall", {}).get("purity"),
                    "duplicate_groups": (result.get("duplicates") or {}).get("group_count"),
                    "stages": result.get("timings_s"),
                }
        else:
            with db.read() as session:
                selection = resolve_selection(session)
            if kind == "export-parquet-stream":
                size = sum(len(c) for c in stream_parquet(db, ExportSpec(selection)))
                extra = {"bytes": size}
            else:
                spec = ExportSpec(selection, SplitSpec.parse("0.8,0.1,0.1"))
                manifest = export_directory(db, spec, data_dir / "export")
                extra = {"rows": manifest["rows"]}
        seconds = time.perf_counter() - start
    db.dispose()
    return {
        "seconds": round(seconds, 2),
        # CPU time of this process: on a shared machine wall time mostly measures the others.
        "cpu_seconds": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_utime
            + resource.getrusage(resource.RUSAGE_SELF).ru_stime,
            1,
        ),
        "baseline_anon_mb": round(before_kb / 1024, 1),
        "peak_anon_mb": round(sampler.peak_anon_kb / 1024, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        **extra,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, nargs="+", default=[100_000])
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--only", choices=MEASUREMENTS, nargs="+", default=list(MEASUREMENTS))
    parser.add_argument("--measure", choices=MEASUREMENTS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.url, args.data_dir)))
        return
    table = Table(title=f"cluster report and export (dim {args.dim}, SQLite)")
    for col in ("objects", "measurement", "seconds", "CPU s", "peak anon MB", "peak RSS MB"):
        table.add_column(col)
    for n in args.objects:
        with tempfile.TemporaryDirectory(prefix="bench-reports-") as tmp:
            url = f"sqlite:///{tmp}/bench.db"
            start = time.perf_counter()
            build_collection(url, n, args.dim)
            print(f"built {n:,} objects in {time.perf_counter() - start:.0f} s", flush=True)
            for kind in args.only:
                out = subprocess.run(
                    [sys.executable, "-m", "bench.reports", "--measure", kind, "--url", url,
                     "--data-dir", f"{tmp}/data-{kind}"],
                    check=True,
                    capture_output=True,
                    text=True,
                )  # fmt: skip
                figures = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"{n:,} {kind}: {json.dumps(figures)}", flush=True)
                table.add_row(
                    f"{n:,}",
                    kind,
                    f"{figures['seconds']:.1f}",
                    f"{figures['cpu_seconds']:.1f}",
                    f"{figures['peak_anon_mb']:.0f}",
                    f"{figures['peak_rss_mb']:.0f}",
                )
    console.print(table)


if __name__ == "__main__":
    main()
