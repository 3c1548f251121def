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
* embedded — ``roisearch ingest`` without Redis (``run_plan``): 2 decode threads, the
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

from bench.ingest.inputs import describe, make_folder, photo
from bench.ingest.rounds import PIPELINE_KINDS, ROW_KINDS, run_rounds
from bench.ingest.rows import (
    CHUNK,
    Prepared,
    Row,
    base_settings,
    baselines,
    bench_bare,
    bench_bare_splits,
    bench_embedded,
    bench_engine_and_serial,
    prepare,
)
from bench.ingest.rq_rig import RQRig, bench_rq

__all__ = [
    "CHUNK",
    "PIPELINE_KINDS",
    "ROW_KINDS",
    "Prepared",
    "RQRig",
    "Row",
    "base_settings",
    "baselines",
    "bench_bare",
    "bench_bare_splits",
    "bench_embedded",
    "bench_engine_and_serial",
    "bench_rq",
    "describe",
    "make_folder",
    "photo",
    "prepare",
    "run_rounds",
]
