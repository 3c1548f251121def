"""Ingestion throughput, end to end, against the bare model forward on the same images.

    .venv/bin/python -m bench.ingest [--images 200] [--size 1920x1080 | --source demo]
                                     [--img-size 640]
                                     [--weights PATH] [--skip-rq] [--chunk 32]
                                     [--only engine serial embedded rq1 rq2] [--rounds R]

A folder of generated photos-like JPEGs (smooth background, shapes, mild noise), or with
``--source demo`` of the demo archive's scenes (the bundled generator's, 200–320 px), is ingested
in each mode with a fresh database and data directory (otherwise known images would be
linked, not recomputed). Weights: ``--weights``, else the bundled demo detector when
``shared/assets/demo-detector.safetensors`` exists, else the random-weight yolov7-tiny
fixture (``tests/fixtures/yolov7``). Rows:

* bare forward — ``model(x)`` on already letterboxed float tensors, same batch size as the
  Detector uses (the baseline: the model's own speed, nothing else), with one stream of every
  torch thread and with the pipeline's stream split (``shared.compute_plan``: 2 streams × 1
  thread on 2 cores), each timed first and last; the fastest of them is the baseline
  ("x bare"; "x 1-stream" divides by the fastest one-stream row);
* engine — ``Detector.embed`` on already decoded arrays, one stream of every thread (forward +
  NMS + ROI pooling);
* serial — read, decode (DCT draft mode, as the pipeline) and embed one image after the
  other: what the pipeline would cost without its decode threads (overlap off);
* embedded — ``roisearch ingest`` without Redis (``IngestionSupervisor.run``): 2 decode threads, the
  process's inference streams, SQLite writes, originals stored;
* RQ n workers — ``roisearch worker`` subprocesses on a private redis-server, SQLite,
  torch threads split between workers; timed from enqueue until every item is done.

``--rounds R`` (R > 1) pairs instead: the images are split into R folders and the bare
forward is timed just before and just after each pipeline run (embedded, RQ), which is
divided by the faster of its two neighbours; the median ratio over the rounds is printed
(see :func:`run_rounds`).

Every in-process row uses ``--threads`` torch threads (default: all cores); RQ rows split
them between workers. Images/s figures include detection and storage of every object
(objects/s). Chunks: ``--chunk`` items (default 32, the product's default). Before the rows, the
time per image of reading, hashing, decoding, letterboxing and the float conversion is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from rich.console import Console
from rich.table import Table

from shared.compute_plan import compute_plan

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURE_WEIGHTS = REPO_ROOT.parent / "shared" / "fixtures" / "yolov7" / "yolov7-tiny-random.pt"
DEMO_WEIGHTS = REPO_ROOT / "shared" / "assets" / "demo-detector.safetensors"
CHUNK = 32  # the default chunk_size


@dataclass
class Row:
    mode: str
    images: int
    seconds: float
    objects: int | None
    note: str = ""


def photo(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(9, 16, 3), dtype=np.uint8)
    image = Image.fromarray(base).resize((width, height), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, y0 = int(rng.integers(0, width - 60)), int(rng.integers(0, height - 60))
        w, h = int(rng.integers(40, width // 4)), int(rng.integers(40, height // 4))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        box = (x0, y0, min(width - 1, x0 + w), min(height - 1, y0 + h))
        if rng.random() < 0.5:
            draw.rectangle(box, fill=colour)
        else:
            draw.ellipse(box, fill=colour)
    noisy = np.asarray(image, np.int16) + rng.integers(-6, 7, (height, width, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def make_folder(
    directory: Path, count: int, size: tuple[int, int], seed: int, source: str = "photos"
) -> Path:
    """``count`` JPEGs: ``photos`` of ``size`` (quality 90), or ``demo`` scenes (the bundled
    generator's, as ``roisearch demo-data`` writes them: 200–320 px, their own quality;
    ``size`` is not used)."""
    from demo.scenes import encode_jpeg, generate_scene

    directory.mkdir(parents=True)
    for i in range(count):
        target = directory / f"{i:05d}.jpg"
        if source == "demo":
            scene = generate_scene(seed, i)
            target.write_bytes(encode_jpeg(scene.image, scene.jpeg_quality))
        else:
            photo(*size, seed * 100_000 + i).save(target, quality=90)
    return directory


def describe(source: str, size: tuple[int, int]) -> str:
    return "demo scenes (200-320 px)" if source == "demo" else f"JPEGs {size[0]}x{size[1]}"


def base_settings(workdir: Path, weights: Path, img_size: int, threads: int, **extra: Any) -> Any:
    from shared.settings import load_settings

    values: dict[str, Any] = {
        "data_dir": workdir / "data",
        "weights": weights,
        "img_size": img_size,
        "chunk_size": CHUNK,
        "torch_threads": threads,
    }
    return load_settings(**(values | extra))


@dataclass
class Prepared:
    settings: Any
    detector: Any
    paths: list[Path]
    arrays: list[np.ndarray]
    tensors: list[torch.Tensor]
    # ms of one core per image for each step done here once, outside the timed rows
    stage_ms: dict[str, float]


def prepare(settings: Any, src: Path, detector: Any = None) -> Prepared:
    """Load the detector (unless given); read, hash, decode and letterbox every image once
    (outside the timed rows; each step's time per image is kept in ``stage_ms``)."""
    from shared.imaging.decoding import decode_image
    from shared.yolov7.detector import Detector
    from shared.yolov7.preprocessing import to_chw_float

    detector = detector or Detector.load(settings.detector_config())
    paths = sorted(src.iterdir())
    clock = time.perf_counter()
    data = [p.read_bytes() for p in paths]
    marks = [("read", time.perf_counter())]
    for blob in data:
        hashlib.sha256(blob).hexdigest()
    marks.append(("sha256", time.perf_counter()))
    arrays = [
        decode_image(blob, name=p.name, max_pixels=10**9, target_size=detector.img_size).array
        for p, blob in zip(paths, data, strict=True)
    ]
    marks.append(("decode (DCT draft)", time.perf_counter()))
    boxed = [detector.prepare(a).pixels for a in arrays]
    marks.append(("letterbox", time.perf_counter()))
    tensors = [
        torch.from_numpy(to_chw_float(boxed[i : i + detector.batch_size]))
        for i in range(0, len(boxed), detector.batch_size)
    ]
    marks.append(("float conversion", time.perf_counter()))
    stage_ms: dict[str, float] = {}
    for name, mark in marks:
        stage_ms[name] = (mark - clock) * 1e3 / len(paths)
        clock = mark
    with torch.inference_mode():
        detector.model(tensors[0])  # warm-up
    return Prepared(settings, detector, paths, arrays, tensors, stage_ms)


def bench_bare(prepared: Prepared, label: str, threads: int, streams: int = 1) -> Row:
    """``model(x)`` over every batch: ``streams`` batches at once, each on ``threads //
    streams`` torch threads (the split the pipeline's compute plan makes)."""
    model = prepared.detector.model
    torch.set_num_threads(max(1, threads // streams))

    def run(batches: list[torch.Tensor]) -> None:
        with torch.inference_mode():
            for x in batches:
                model(x)

    try:
        start = time.perf_counter()
        if streams == 1:
            run(prepared.tensors)
        else:
            workers = [
                threading.Thread(target=run, args=(prepared.tensors[i::streams],))
                for i in range(streams)
            ]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
        seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    note = f"batch {prepared.detector.batch_size}, {streams} x {max(1, threads // streams)} thr"
    mode = f"bare forward, {streams} stream(s), {label}"
    return Row(mode, len(prepared.paths), seconds, None, note)


def bench_bare_splits(prepared: Prepared, label: str, threads: int) -> list[Row]:
    """The bare forward with one stream of every thread and with the pipeline's stream split
    (:func:`shared.compute_plan.compute_plan`); the baseline is the fastest bare row, so the
    choice of split never flatters the pipeline."""
    splits = sorted({1, compute_plan(prepared.settings.detector_config(), cuda=False).streams})
    return [bench_bare(prepared, label, threads, streams) for streams in splits]


def bench_engine_and_serial(prepared: Prepared) -> tuple[Row, Row]:
    from shared.imaging.decoding import decode_image

    detector = prepared.detector
    start = time.perf_counter()
    objects = sum(len(r.boxes) for a in prepared.arrays for r in detector.embed([a]))
    engine = time.perf_counter() - start

    start = time.perf_counter()
    serial_objects = 0
    for p in prepared.paths:
        decoded = decode_image(
            p.read_bytes(), name=p.name, max_pixels=10**9, target_size=detector.img_size
        )
        serial_objects += len(detector.embed([decoded.array])[0].boxes)
    serial = time.perf_counter() - start
    n = len(prepared.paths)
    return (
        Row("engine: Detector.embed, decoded arrays", n, engine, objects),
        Row("serial read+decode+embed (overlap off)", n, serial, serial_objects),
    )


def baselines(rows: list[Row]) -> tuple[float, float]:
    """(fastest one-stream, fastest of all) bare-forward images/s among ``rows``."""
    bare = [r for r in rows if r.mode.startswith("bare")]
    one = max(r.images / r.seconds for r in bare if r.mode.startswith("bare forward, 1 "))
    return one, max(r.images / r.seconds for r in bare)


def bench_embedded(
    workdir: Path,
    weights: Path,
    img_size: int,
    torch_threads: int,
    src: Path,
    threads: int,
    chunk: int = CHUNK,
) -> Row:
    from shared.db import migrations
    from shared.db.database import Database
    from shared.ingestion.progress import ingestion_progress
    from shared.ingestion.supervisor import IngestionSupervisor
    from shared.model_provider import ModelProvider

    settings = base_settings(
        workdir, weights, img_size, torch_threads, decode_threads=threads, chunk_size=chunk
    )
    migrations.upgrade(settings.resolved_database_url)
    db = Database.from_url(settings.resolved_database_url)
    models = ModelProvider(settings.detector_config(), throughput=True)
    models.get().embed([np.zeros((64, 64, 3), np.uint8)])  # load + warm-up, not timed
    start = time.perf_counter()
    supervisor = IngestionSupervisor(db, settings.ingestion_config())
    plan = supervisor.start(src)
    supervisor.run(plan, models)
    seconds = time.perf_counter() - start
    with db.read() as session:
        progress = ingestion_progress(session, plan.ingestion_id)
    assert progress is not None and progress.counts["done"] == plan.total_items
    db.dispose()
    return Row(
        f"embedded, {threads} decode thread(s) (overlap on)",
        plan.total_items,
        seconds,
        progress.objects,
        "SQLite, originals stored",
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RQRig:
    """A private redis-server and ``n`` ``roisearch worker`` subprocesses sharing ``cores``
    torch threads, SQLite in ``workdir``; every worker loads and warms its model on ``warm``
    first. ``run(folder)`` times one ingestion from enqueue until every item is done."""

    def __init__(
        self,
        workdir: Path,
        weights: Path,
        img_size: int,
        cores: int,
        warm: Path,
        n: int,
        chunk: int = CHUNK,
    ) -> None:
        self.workdir, self.weights, self.img_size = workdir, weights, img_size
        self.warm, self.n, self.chunk = warm, n, chunk
        self.threads = max(1, cores // n)
        self.mode = f"RQ, {n} worker(s) x {self.threads} torch thread(s)"
        self._redis: subprocess.Popen[bytes] | None = None
        self._workers: list[subprocess.Popen[bytes]] = []
        self._db: Any = None

    def __enter__(self) -> RQRig:
        from redis import Redis
        from rq import Worker

        from shared.db import migrations
        from shared.db.database import Database
        from shared.queueing import RQJobQueue

        self.workdir.mkdir(parents=True)
        port = free_port()
        self._redis = subprocess.Popen(
            ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            cwd=self.workdir,
        )
        try:
            url = f"redis://127.0.0.1:{port}/0"
            self.settings = base_settings(
                self.workdir,
                self.weights,
                self.img_size,
                self.threads,
                redis_url=url,
                chunk_size=self.chunk,
            )
            migrations.upgrade(self.settings.resolved_database_url)
            self._db = Database.from_url(self.settings.resolved_database_url)
            env = {k: v for k, v in os.environ.items() if not k.startswith("ROISEARCH_")} | {
                "ROISEARCH_DATA_DIR": str(self.settings.data_dir),
                "ROISEARCH_REDIS_URL": url,
                "ROISEARCH_WEIGHTS": str(self.weights),
                "ROISEARCH_IMG_SIZE": str(self.img_size),
                "ROISEARCH_CHUNK_SIZE": str(self.chunk),
                "ROISEARCH_TORCH_THREADS": str(self.threads),
                "ROISEARCH_LOG_LEVEL": "WARNING",
            }
            deadline = time.monotonic() + 30
            while True:
                try:
                    Redis.from_url(url).ping()
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            for _ in range(self.n):
                self._workers.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "roisearch", "worker"],
                        cwd=REPO_ROOT,
                        env=env,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
            while len(Worker.all(connection=Redis.from_url(url))) < self.n:
                if any(w.poll() is not None for w in self._workers):
                    raise RuntimeError("a worker exited during start-up")
                time.sleep(0.2)
            self._queue = RQJobQueue.from_settings(self.settings)
            self.run(self.warm)  # every worker loads and warms its model on other images first
        except BaseException:
            self.__exit__()
            raise
        return self

    def run(self, folder: Path) -> Row:
        from sqlalchemy import select

        from shared.db.models import Ingestion
        from shared.ingestion.progress import ingestion_progress
        from shared.ingestion.supervisor import IngestionSupervisor

        start = time.perf_counter()
        supervisor = IngestionSupervisor(self._db, self.settings.ingestion_config(), self._queue)
        plan = supervisor.start(folder)
        supervisor.enqueue(plan)
        while True:
            # one cheap status read per poll: the full progress (counts, objects, rate) costs
            # tens of ms at 1,000 items, CPU taken from the worker being measured
            with self._db.read() as session:
                status = session.scalar(
                    select(Ingestion.status).where(Ingestion.id == plan.ingestion_id)
                )
            if status not in ("planning", "running"):
                seconds = time.perf_counter() - start
                with self._db.read() as session:
                    progress = ingestion_progress(session, plan.ingestion_id)
                assert progress is not None
                return Row(self.mode, plan.total_items, seconds, progress.objects, "SQLite")
            time.sleep(0.25)

    def __exit__(self, *_: object) -> None:
        for w in self._workers:
            w.send_signal(signal.SIGTERM)
        for w in self._workers:
            try:
                w.wait(30)
            except subprocess.TimeoutExpired:
                w.kill()
        if self._redis is not None:
            self._redis.kill()
            self._redis.wait()
        if self._db is not None:
            self._db.dispose()


def bench_rq(
    workdir: Path,
    weights: Path,
    img_size: int,
    cores: int,
    src: Path,
    warm: Path,
    n: int,
    chunk: int = CHUNK,
) -> Row:
    with RQRig(workdir, weights, img_size, cores, warm, n, chunk) as rig:
        return rig.run(src)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
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
    weights: Path = args.weights or (DEMO_WEIGHTS if DEMO_WEIGHTS.is_file() else FIXTURE_WEIGHTS)
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


if __name__ == "__main__":
    main()
