"""How a process spends its CPU cores on the model: inference streams × threads per stream.

On CPU, one forward spread over every core scales poorly: each layer is a parallel region whose
threads wait at a barrier for the slowest, and any other work on a core (image decoding, NMS,
database writes) stalls all of them. Several batches in flight, each on fewer threads, keep the
cores busy instead. Measured on 2 cores (``bench/ingest.py``, 1,000 1080p JPEGs at 640, batch
1): the bare forward of two single-thread streams ran 105 images/s against 52–70 for one
two-thread stream with the demo detector, 16.1 against 14.2–15.3 with yolov7-tiny, and the
ingestion pipeline went from 21 to 56 and from 5.8 to 13.9 images/s. On a GPU the device does
the parallel work: one stream.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the package loads torch; planning must not
    from shared.yolov7.detector_config import DetectorConfig

# Auto mode never splits the cores into more streams than this: each stream holds its own
# activations (batch × the largest feature maps), and beyond a few streams the gain is gone.
MAX_AUTO_STREAMS = 4
# Auto mode gives each stream at least this many threads on large machines.
MIN_AUTO_THREADS_PER_STREAM = 2


@dataclass(frozen=True)
class ComputePlan:
    """``streams`` batches run the model at once, each with ``threads`` intra-op threads."""

    streams: int
    threads: int


def compute_plan(config: DetectorConfig, *, cuda: bool, cores: int | None = None) -> ComputePlan:
    """The plan for this process. ``config.torch_threads`` is the total thread budget
    (default: every core); ``model_streams`` overrides the number of streams (default: 1 on
    CUDA; on CPU one per core up to 2 cores, then as many as keep at least two threads each, at
    most 4)."""
    cores = cores or os.cpu_count() or 1
    total = config.torch_threads or cores
    if config.model_streams is not None:
        streams = config.model_streams
    elif cuda:
        streams = 1
    elif total <= 2:
        streams = total
    else:
        streams = max(1, min(MAX_AUTO_STREAMS, total // MIN_AUTO_THREADS_PER_STREAM))
    return ComputePlan(streams=streams, threads=max(1, total // streams))
