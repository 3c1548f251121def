"""``python -m bench.ingest``: the command line (see the package's docstring)."""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from bench.ingest.inputs import describe, make_folder
from bench.ingest.rounds import ROW_KINDS, run_rounds
from bench.ingest.rows import (
    CHUNK,
    base_settings,
    baselines,
    bench_bare_splits,
    bench_embedded,
    bench_engine_and_serial,
    prepare,
)
from bench.ingest.rq_rig import bench_rq
from bench.proof.config import default_weights


def main() -> None:
    from bench import ingest  # the package's docstring describes every row

    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest",
        description=ingest.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--size", default="1920x1080", help="generated JPEG size, WxH")
    parser.add_argument(
        "--source",
        choices=("photos", "demo"),
        default="photos",
        help="photos: generated photo-like JPEGs of --size; demo: the demo archive's scenes",
    )
    parser.add_argument("--img-size", type=int, default=640, help="model letterbox size")
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--skip-rq", action="store_true", help="no Redis rows")
    parser.add_argument("--chunk", type=int, default=CHUNK, help="items per chunk (job)")
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count() or 1, help="torch threads (all workers)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="paired rounds: bare forward before/after each pipeline run (embedded, rq1, rq2)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=ROW_KINDS,
        default=list(ROW_KINDS),
        help="rows besides the bare forward (which always runs first and last)",
    )
    args = parser.parse_args()
    if not 1 <= args.rounds <= args.images:
        parser.error(f"--rounds must be between 1 and --images ({args.images})")
    weights: Path = args.weights or default_weights()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    assert len(size) == 2
    torch.set_num_threads(args.threads)
    console = Console(width=140)

    root = Path(tempfile.mkdtemp(prefix="roisearch-bench-ingest-"))
    if args.rounds > 1:
        try:
            run_rounds(console, root, weights, args, (size[0], size[1]))
        finally:
            shutil.rmtree(root, ignore_errors=True)
        return
    try:
        started = time.perf_counter()
        src = make_folder(root / "photos", args.images, (size[0], size[1]), 1, args.source)
        warm = make_folder(root / "warm", 6, (size[0], size[1]), 2, args.source)
        console.print(
            f"{args.images} {describe(args.source, (size[0], size[1]))} generated in "
            f"{time.perf_counter() - started:.0f} s; weights {weights.name}, "
            f"img_size {args.img_size}, {os.cpu_count()} CPU(s), {args.threads} torch "
            f"thread(s), chunk {args.chunk}"
        )
        prepared = prepare(base_settings(root / "bare", weights, args.img_size, args.threads), src)
        console.print(
            "per image, one core: "
            + ", ".join(f"{name} {ms:.2f} ms" for name, ms in prepared.stage_ms.items())
        )
        # The baseline is measured first and last; the fastest is used, so a change of machine
        # load during the run does not flatter the pipeline rows.
        rows = bench_bare_splits(prepared, "first", args.threads)
        if {"engine", "serial"} & set(args.only):
            rows.extend(
                r
                for r in bench_engine_and_serial(prepared)
                if ("engine" in args.only or not r.mode.startswith("engine"))
                and ("serial" in args.only or not r.mode.startswith("serial"))
            )
        if "embedded" in args.only:
            rows.append(
                bench_embedded(
                    root / "emb", weights, args.img_size, args.threads, src, 2, args.chunk
                )
            )
        if not args.skip_rq and shutil.which("redis-server"):
            for n in (1, 2):
                if f"rq{n}" in args.only:
                    rows.append(
                        bench_rq(
                            root / f"rq{n}",
                            weights,
                            args.img_size,
                            args.threads,
                            src,
                            warm,
                            n,
                            args.chunk,
                        )
                    )
        rows.extend(bench_bare_splits(prepared, "last", args.threads))
        one_stream, baseline = baselines(rows)
        table = Table(title=f"ingestion throughput, {args.images} images, {weights.name}")
        columns = ("mode", "images", "seconds", "images/s", "objects/s", "x bare", "x 1-stream")
        for column in (*columns, "note"):
            table.add_column(column, justify="left" if column in ("mode", "note") else "right")
        for row in rows:
            rate = row.images / row.seconds
            table.add_row(
                row.mode,
                str(row.images),
                f"{row.seconds:.1f}",
                f"{rate:.2f}",
                "-" if row.objects is None else f"{row.objects / row.seconds:.1f}",
                f"{rate / baseline:.0%}",
                f"{rate / one_stream:.0%}",
                row.note,
            )
        console.print(table)
    finally:
        shutil.rmtree(root, ignore_errors=True)
