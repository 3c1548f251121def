"""Paired rounds: each pipeline run divided by the bare forward timed just before and after."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.ingest.inputs import describe, make_folder
from bench.ingest.rows import (
    Row,
    base_settings,
    baselines,
    bench_bare_splits,
    bench_embedded,
    prepare,
)
from bench.ingest.rq_rig import RQRig

ROW_KINDS = ("engine", "serial", "embedded", "rq1", "rq2")
PIPELINE_KINDS = ("embedded", "rq1", "rq2")


def run_rounds(
    console: Console,
    root: Path,
    weights: Path,
    args: argparse.Namespace,
    size: tuple[int, int],
) -> None:
    """Paired rounds: the images are split into ``args.rounds`` folders; before each round's
    pipeline rows, and once after the last, the bare forward runs (both splits) on that
    round's images. Each pipeline run is divided by the fastest bare row adjacent to it in
    time (just before and just after): on a machine whose speed drifts by ±10 % over minutes,
    a baseline taken minutes away says more about the drift than about the pipeline.
    """
    per = args.images // args.rounds
    folders = [
        make_folder(root / f"round{r}", per, size, 1 + r, args.source) for r in range(args.rounds)
    ]
    warm = make_folder(root / "warm", 6, size, 99, args.source)
    settings = base_settings(root / "bare", weights, args.img_size, args.threads)
    prepared = [prepare(settings, folders[0])]
    for folder in folders[1:]:
        prepared.append(prepare(settings, folder, prepared[0].detector))
    console.print(
        f"{args.rounds} rounds of {per} {describe(args.source, size)}; weights {weights.name}, "
        f"img_size {args.img_size}, {os.cpu_count()} CPU(s), {args.threads} torch thread(s), "
        f"chunk {args.chunk}; per image, one core: "
        + ", ".join(f"{name} {ms:.2f} ms" for name, ms in prepared[0].stage_ms.items())
    )
    modes = [m for m in args.only if m in PIPELINE_KINDS]
    if args.skip_rq or not shutil.which("redis-server"):
        modes = [m for m in modes if m == "embedded"]
    with contextlib.ExitStack() as stack:
        rigs = {
            m: stack.enter_context(
                RQRig(
                    root / m,
                    weights,
                    args.img_size,
                    args.threads,
                    warm,
                    int(m[2:]),
                    args.chunk,
                )
            )
            for m in modes
            if m.startswith("rq")
        }

        def bare(r: int) -> tuple[float, float]:
            return baselines(bench_bare_splits(prepared[r], f"round {r}", args.threads))

        bares = []
        runs: list[dict[str, Row]] = []
        for r, folder in enumerate(folders):
            bares.append(bare(r))
            done: dict[str, Row] = {}
            for m in modes:
                done[m] = (
                    rigs[m].run(folder)
                    if m in rigs
                    else bench_embedded(
                        root / f"emb{r}",
                        weights,
                        args.img_size,
                        args.threads,
                        folder,
                        2,
                        args.chunk,
                    )
                )
            runs.append(done)
        bares.append(bare(len(folders) - 1))

    table = Table(title=f"paired rounds, {per} images each, {weights.name}")
    for column in ("round", "bare 1-stream", "bare best", "mode", "images/s", "x bare", "x 1-str"):
        table.add_column(column, justify="left" if column == "mode" else "right")
    ratios: dict[str, list[tuple[float, float]]] = {m: [] for m in modes}
    for r, done in enumerate(runs):
        one = max(bares[r][0], bares[r + 1][0])
        best = max(bares[r][1], bares[r + 1][1])
        for m, row in done.items():
            rate = row.images / row.seconds
            ratios[m].append((rate / best, rate / one))
            table.add_row(
                str(r + 1),
                f"{one:.2f}",
                f"{best:.2f}",
                row.mode,
                f"{rate:.2f}",
                f"{rate / best:.0%}",
                f"{rate / one:.0%}",
            )
    console.print(table)
    for m in modes:
        images = sum(done[m].images for done in runs)
        seconds = sum(done[m].seconds for done in runs)
        best_ratios = sorted(x for x, _ in ratios[m])
        one_ratios = sorted(y for _, y in ratios[m])
        console.print(
            f"{runs[0][m].mode}: {images / seconds:.2f} images/s over {images} images; "
            f"x adjacent best bare: median {statistics.median(best_ratios):.0%} "
            f"(range {best_ratios[0]:.0%}-{best_ratios[-1]:.0%}); x adjacent 1-stream bare: "
            f"median {statistics.median(one_ratios):.0%} "
            f"(range {one_ratios[0]:.0%}-{one_ratios[-1]:.0%})"
        )
