"""The model side of a chunk: decode and letterbox in a thread pool ahead of the model, then
detect+embed in ``streams`` batches at a time. Items that fail get their error set and are
left out of the model's batches; nothing here touches the database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from shared.annotations.matching import pixel_boxes
from shared.annotations.model import BOX_INVALID, ImageLabels
from shared.imaging.decoding import ImageDecodeError, decode_image
from shared.ingestion.config import IngestionConfig

if TYPE_CHECKING:
    from shared.yolov7.detector import Detector, ImageResult, PreparedImage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Picture:
    """What a chunk keeps of a decoded image: its facts and the letterboxed pixels (the
    decoded array is dropped once letterboxed). ``scale``: original pixels per pixel of the
    decoded array, the frame of the boxes the detector returns."""

    width: int
    height: int
    format: str
    scale: float
    prepared: PreparedImage


@dataclass
class Work:
    item_id: int
    member: str
    data: bytes | None = None
    sha256: str | None = None
    picture: Picture | None = None
    result: ImageResult | None = None
    error: tuple[str, str] | None = None
    linked: bool = False
    # Labelled boxes (ingestion_items.labels) and, once decoded, them in original pixels.
    labels: ImageLabels | None = None
    label_boxes: np.ndarray | None = None
    detect: bool = True  # False: the ingestion asked for labelled boxes only


def decode(work: Work, settings: IngestionConfig, detector: Detector) -> Work:
    """Decode and letterbox (in a decode thread)."""
    assert work.data is not None
    try:
        decoded = decode_image(
            work.data,
            name=work.member,
            max_pixels=settings.max_image_pixels,
            target_size=detector.img_size,
        )
    except ImageDecodeError as exc:
        work.error = (exc.code, exc.message)
        return work
    try:
        prepared = detector.prepare(decoded.array)
    except Exception:
        # An exception here would end the decode pool's map, and with it the whole chunk.
        log.exception("letterboxing failed on %s", work.member)
        work.error = ("model_error", f"{work.member}: the model cannot take this image")
        return work
    work.picture = Picture(decoded.width, decoded.height, decoded.format, decoded.scale, prepared)
    if work.labels is not None:
        boxes = pixel_boxes(work.labels, decoded.width, decoded.height)
        if isinstance(boxes, str):
            work.error = (BOX_INVALID, f"{work.member}: {boxes}")
        else:
            work.label_boxes = boxes
    return work


def embed(detector: Detector, batch: list[Work]) -> None:
    prepared = [w.picture.prepared for w in batch if w.picture is not None]
    # Labelled boxes are pooled in the same forward pass as the detections, in the frame of
    # the decoded array (the detector's), i.e. original pixels / scale.
    boxes = [
        None if w.label_boxes is None or w.picture is None else w.label_boxes / w.picture.scale
        for w in batch
    ]
    try:
        results = detector.embed(prepared, boxes, detect=batch[0].detect)
    except Exception:
        if len(batch) == 1:
            log.exception("model failed on %s", batch[0].member)
            batch[0].error = ("model_error", f"{batch[0].member}: the model failed on this image")
            return
        # Isolate the image that breaks the batch; the others still get their vectors.
        for w in batch:
            embed(detector, [w])
        return
    for w, result in zip(batch, results, strict=True):
        w.result = result


def embed_all(
    detector: Detector,
    batches: Iterator[list[Work]],
    streams: int,
    after: Callable[[list[Work]], None],
) -> None:
    """Run the model on every batch, ``streams`` batches at a time (see shared.compute_plan),
    and call ``after(batch)`` (in this thread) as each batch is done.

    The detector's forward is reentrant (no per-call state on the module), so its streams
    share one copy of the weights.
    """
    if streams <= 1:
        for batch in batches:
            embed(detector, batch)
            after(batch)
        return
    with ThreadPoolExecutor(streams, thread_name_prefix="model") as pool:
        pending: dict[Future[None], list[Work]] = {}

        def collect(futures: set[Future[None]]) -> None:
            for future in futures:
                future.result()
                after(pending.pop(future))

        for batch in batches:
            if len(pending) >= streams:
                # Keep at most one batch waiting per stream: decoded images are memory.
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                collect(done)
            pending[pool.submit(embed, detector, batch)] = batch
        collect(set(pending))


def batches(
    items: list[Work], settings: IngestionConfig, detector: Detector
) -> Iterator[list[Work]]:
    """Decoded items in model-sized batches; decoding runs ahead in the thread pool."""
    with ThreadPoolExecutor(settings.decode_threads, thread_name_prefix="decode") as pool:
        batch: list[Work] = []
        for w in pool.map(lambda x: decode(x, settings, detector), items):
            if w.error is None:
                batch.append(w)
                if len(batch) >= detector.batch_size:
                    yield batch
                    batch = []
        if batch:
            yield batch
