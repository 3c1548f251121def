"""The timed rows: the bare model forward (the baseline), the engine, the serial loop and the
embedded pipeline, each on images prepared once outside the timing."""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shared.compute_plan import compute_plan

CHUNK = 32  # the default chunk_size


@dataclass
class Row:
    mode: str
    images: int
    seconds: float
    objects: int | None
    note: str = ""


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
