"""Process one chunk of ingestion items: read → hash → decode (threads) → detect+embed → write.

Guarantees:
- Idempotent and retryable: only pending items are processed; images are unique by content
  hash, objects by ``(image_id, space_id, ordinal)``, image embeddings by ``(image, space)``,
  all inserted with ON CONFLICT DO NOTHING. A chunk retried after a crash at any point writes
  nothing twice.
- One transaction per chunk for images, objects and item statuses.
- One broken item never fails the chunk: it gets a stable error code and message.
- Known images (same content hash already embedded in this space) are linked, not recomputed.
- Decoding and letterboxing run in a thread pool ahead of the model, so the model is never
  waiting on Pillow or a resize when there is work queued (on a GPU the model's thread only
  feeds the device); that side lives in :mod:`shared.ingestion.model_stage`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from sqlalchemy import Table, bindparam, exists, select, update
from sqlalchemy.orm import Session

from shared.annotations.model import ImageLabels
from shared.db.database import Database
from shared.db.models import (
    Image,
    ImageEmbedding,
    Ingestion,
    IngestionItem,
    IngestionStatus,
    ItemStatus,
)
from shared.db.upserts import insert_ignore
from shared.imaging.store import read_original, relative_path, store_original
from shared.ingestion.config import IngestionConfig
from shared.ingestion.label_rows import BoxSource, insert_with_labels, label_object_rows
from shared.ingestion.model_stage import Picture, Work, batches, embed_all
from shared.ingestion.sources import MemberError, MemberReader
from shared.ingestion.spaces import class_name, ensure_space
from shared.ingestion.uploads import image_source, remove_upload_if_finished

if TYPE_CHECKING:
    from shared.yolov7.detector import Detector, ImageResult

# Decode-error codes of members that are not images: recorded as skipped, not failed.
NOT_IMAGE_CODES = frozenset({"not_an_image", "empty_file"})
log = logging.getLogger(__name__)

# After this many started attempts an item is given up (a poison image that kills the worker).
MAX_ATTEMPTS = 5
# Threads writing originals to the image store: each write ends in an fsync, which waits on
# the disk with the GIL released, so a few in parallel hide the latency at no CPU cost.
STORE_THREADS = 4


_items = cast(Table, IngestionItem.__table__)
# Records one item's outcome; pending items only, so a retried chunk never overwrites one.
_RECORD_ITEM = (
    update(_items)
    .where(_items.c.id == bindparam("item"), _items.c.status == ItemStatus.PENDING)
    .values(
        status=bindparam("new_status"),
        image_id=bindparam("new_image"),
        error_code=bindparam("new_code"),
        error_message=bindparam("new_message"),
    )
)


@dataclass
class ChunkSummary:
    ingestion_id: int
    chunk: int
    done: int = 0
    failed: int = 0
    linked: int = 0
    objects: int = 0
    skipped: bool = False


@dataclass
class _Chunk:
    source: Path
    kind: str
    options: dict[str, Any] = field(default_factory=dict)
    items: list[Work] = field(default_factory=list)


def _claim(db: Database, ingestion_id: int, chunk: int) -> _Chunk | None:
    """Load the chunk's pending items and count this attempt (its own small transaction)."""
    with db.begin() as session:
        ingestion = session.get(Ingestion, ingestion_id)
        if ingestion is None or ingestion.status == IngestionStatus.CANCELLED:
            return None
        # The chunk's rows, pending ones kept here rather than in SQL: with the status in the
        # WHERE clause SQLite picks the (ingestion, status) index and scans every pending item
        # of the ingestion for each chunk — quadratic (a 100k-member source took 14x the time
        # of a 20k one). By (ingestion, chunk) it reads only the chunk's rows.
        rows = [
            r
            for r in session.execute(
                select(
                    IngestionItem.id,
                    IngestionItem.member,
                    IngestionItem.staged_sha256,
                    IngestionItem.status,
                    IngestionItem.labels,
                )
                .where(IngestionItem.ingestion_id == ingestion_id, IngestionItem.chunk == chunk)
                .order_by(IngestionItem.seq)
            )
            if r.status == ItemStatus.PENDING
        ]
        if not rows:
            return None
        ids = [r.id for r in rows]
        session.execute(
            update(IngestionItem)
            .where(IngestionItem.id.in_(ids))
            .values(attempts=IngestionItem.attempts + 1)
        )
        attempts = dict(
            session.execute(
                select(IngestionItem.id, IngestionItem.attempts).where(IngestionItem.id.in_(ids))
            ).all()
        )
        work = _Chunk(Path(ingestion.source), ingestion.source_kind, dict(ingestion.options or {}))
        boxes = BoxSource((ingestion.options or {}).get("boxes") or BoxSource.BOTH)
        for r in rows:
            w = Work(r.id, r.member, sha256=r.staged_sha256, detect=boxes != BoxSource.LABELS)
            if r.labels is not None and boxes != BoxSource.DETECTIONS:
                w.labels = ImageLabels.from_json(r.labels)
            if attempts[r.id] > MAX_ATTEMPTS:
                w.error = (
                    "processing_failed",
                    f"{r.member} was attempted {MAX_ATTEMPTS} times without completing "
                    "(it may crash the worker)",
                )
            work.items.append(w)
        return work


def _read(work: Work, reader: MemberReader | None, settings: IngestionConfig) -> None:
    try:
        if work.sha256 is not None:
            work.data = read_original(settings.data_dir, relative_path(work.sha256))
        else:
            assert reader is not None, "only staged (tar) items come without a reader"
            work.data = reader.read(work.member)
            work.sha256 = hashlib.sha256(work.data).hexdigest()
    except MemberError as exc:
        work.error = (exc.code, exc.message)
    except OSError as exc:
        work.error = ("read_failed", f"{work.member} could not be read: {exc.strerror or exc}")


def _known(session: Session, shas: Sequence[str], space_id: int) -> dict[str, int]:
    """Content hashes already embedded in this space → image id."""
    if not shas:
        return {}
    rows = session.execute(
        select(Image.sha256, Image.id)
        .join(ImageEmbedding, ImageEmbedding.image_id == Image.id)
        .where(Image.sha256.in_(list(shas)), ImageEmbedding.space_id == space_id)
    ).all()
    return {str(sha): int(image_id) for sha, image_id in rows}


def _object_rows(
    result: ImageResult, picture: Picture, image_id: int, space_id: int, names: list[str]
) -> list[dict[str, Any]]:
    boxes = result.boxes.astype(np.float64) * picture.scale
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, picture.width)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, picture.height)
    rows = []
    for ordinal, (box, score, cls, vec) in enumerate(
        zip(boxes, result.scores, result.classes, result.vectors, strict=True)
    ):
        if box[2] <= box[0] or box[3] <= box[1]:
            # Entirely outside the picture (in the letterbox padding): nothing to show or
            # search; the objects table promises x1 < x2 and y1 < y2. Ordinals of the others
            # stay as the detector ranked them, so a retry computes the same keys.
            continue
        class_id = int(cls)
        rows.append(
            {
                "image_id": image_id,
                "space_id": space_id,
                "ordinal": ordinal,
                "x1": float(box[0]),
                "y1": float(box[1]),
                "x2": float(box[2]),
                "y2": float(box[3]),
                "class_id": class_id,
                "class_name": class_name(names, class_id),
                "score": float(score),
                "vector": np.ascontiguousarray(vec, dtype="<f4").tobytes(),
            }
        )
    return rows


def process_chunk(
    db: Database,
    settings: IngestionConfig,
    detector: Detector,
    ingestion_id: int,
    chunk: int,
    *,
    streams: int = 1,
) -> ChunkSummary:
    """Process the pending items of one chunk. Safe to call again at any time.

    ``streams``: batches run through the model at once (``ModelProvider.streams``).
    """
    summary = ChunkSummary(ingestion_id, chunk)
    claimed = _claim(db, ingestion_id, chunk)
    if claimed is None:
        summary.skipped = True
        with db.begin() as session:
            finish_if_complete(session, ingestion_id)
        remove_upload_if_finished(db, settings.data_dir, ingestion_id)
        return summary
    items = [w for w in claimed.items if w.error is None]
    if claimed.kind == "tar":  # staged into the image store at planning time
        for w in items:
            _read(w, None, settings)
    else:
        with MemberReader(claimed.source, claimed.kind, settings) as reader:
            for w in items:
                _read(w, reader, settings)

    with db.begin() as session:
        space_id = ensure_space(session, detector.space)
        known = _known(session, [w.sha256 for w in items if w.sha256 and not w.error], space_id)

    fresh: dict[str, Work] = {}
    for w in items:
        if w.error is not None or w.sha256 is None:
            continue
        if w.sha256 in known:
            w.linked = True
        elif w.sha256 in fresh:
            w.linked = True  # same content twice in one chunk: compute once
        else:
            fresh[w.sha256] = w
    # Originals are written (and fsynced) while the model runs on the next batches: the
    # writes wait on the disk, not the CPU, and would otherwise stall the model per chunk.
    with ThreadPoolExecutor(STORE_THREADS, thread_name_prefix="store") as store:
        storing: dict[str, Future[str]] = {}

        def keep(batch: list[Work]) -> None:
            for w in batch:
                if w.result is not None and w.data is not None and settings.store_originals:
                    assert w.sha256 is not None
                    storing[w.sha256] = store.submit(
                        store_original, settings.data_dir, w.sha256, w.data
                    )

        embed_all(detector, batches(list(fresh.values()), settings, detector), streams, keep)
        stored: dict[str, str | None] = {sha: f.result() for sha, f in storing.items()}

    names = list(detector.class_names)

    with db.begin() as session:
        image_rows = []
        for sha, w in fresh.items():
            if w.result is None or w.picture is None:
                continue
            image_rows.append(
                {
                    "sha256": sha,
                    "width": w.picture.width,
                    "height": w.picture.height,
                    "format": w.picture.format,
                    "bytes": len(w.data or b""),
                    "source": image_source(
                        str(claimed.source), claimed.kind, claimed.options, w.member
                    ),
                    "storage_path": stored.get(sha),
                }
            )
        # One global order: two transactions inserting the same new images (duplicates in
        # two chunks) then wait on each other in the same order, never in a cycle (PG deadlock).
        image_rows.sort(key=lambda row: str(row["sha256"]))
        insert_ignore(session, Image.__table__, image_rows)  # type: ignore[arg-type]
        all_shas = [w.sha256 for w in items if w.sha256]
        ids = dict(
            session.execute(select(Image.sha256, Image.id).where(Image.sha256.in_(all_shas))).all()
        )
        object_rows: list[dict[str, Any]] = []
        labelled_rows: list[dict[str, Any]] = []
        embedding_rows: list[dict[str, Any]] = []
        for sha, w in fresh.items():
            if w.result is None or w.picture is None:
                continue
            image_id = ids[sha]
            rows = _object_rows(w.result, w.picture, image_id, space_id, names)
            if w.label_boxes is not None and w.labels is not None:
                rows += label_object_rows(
                    w.label_boxes,
                    [b.label for b in w.labels.boxes],
                    w.result.query_vectors,
                    image_id,
                    space_id,
                )
            object_rows.extend(r for r in rows if "label" not in r)
            labelled_rows.extend(r for r in rows if "label" in r)  # class ids set on insert
            embedding_rows.append(
                {
                    "image_id": image_id,
                    "space_id": space_id,
                    "object_count": len(rows),
                    "vector": np.ascontiguousarray(w.result.image_vector, "<f4").tobytes(),
                }
            )
            summary.objects += len(rows)
        insert_with_labels(session, object_rows, labelled_rows)
        insert_ignore(session, ImageEmbedding.__table__, embedding_rows)  # type: ignore[arg-type]

        results: list[dict[str, Any]] = []
        for w in claimed.items:
            error = w.error
            item_image = ids.get(w.sha256) if w.sha256 else None
            if error is None and not w.linked and w.result is None:
                error = ("model_error", f"{w.member}: no result from the model")
            if error is None and item_image is None:
                # A linked duplicate whose twin failed in this chunk.
                twin = fresh.get(w.sha256 or "")
                error = _twin_error(w, twin) if twin else ("internal", "image not stored")
            if error is not None:
                # A member that is not an image at all (labels, JSON, empty files beside the
                # images) is recorded with its reason but is not a failed image.
                skipped = error[0] in NOT_IMAGE_CODES
                summary.failed += int(not skipped)
                status, image, code, message = (
                    ItemStatus.SKIPPED if skipped else ItemStatus.FAILED,
                    None,
                    *error,
                )
            else:
                summary.done += 1
                summary.linked += int(w.linked)
                status, image, code, message = ItemStatus.DONE, item_image, None, None
            results.append(
                {
                    "item": w.item_id,
                    "new_status": status,
                    "new_image": image,
                    "new_code": code,
                    "new_message": message,
                }
            )
        # One executemany for the chunk: a statement per item cost ~0.5 ms each on SQLite,
        # over half of the chunk's transaction, all of it with the model idle.
        session.execute(_RECORD_ITEM, results)
        finished = finish_if_complete(session, ingestion_id)
    if finished:  # every member accounted for: an uploaded source is no longer needed
        remove_upload_if_finished(db, settings.data_dir, ingestion_id)
    return summary


def _twin_error(work: Work, twin: Work) -> tuple[str, str]:
    """The error of ``work``, whose identical twin was decoded in its place and failed.

    The twin's message names the twin; the user reads this item's message to find this
    member, so it must name this one (what decoding it on its own would have said).
    """
    if twin.error is None:
        return ("internal", f"{work.member}: image not stored")
    code, message = twin.error
    if message.startswith(twin.member):
        return code, work.member + message[len(twin.member) :]
    return code, f"{work.member} (same content as {twin.member}): {message}"


def finish_if_complete(session: Session, ingestion_id: int) -> bool:
    """Mark the ingestion done once no item is pending (inside the caller's transaction);
    True if this call did.

    The ingestion row is locked first. On PostgreSQL two chunks finishing at the same time
    would otherwise each see the other's items still pending (uncommitted) and neither would
    mark the ingestion done (found by the full proof battery: 480/480 items done, ingestion
    left running). With the lock the second waits for the first to commit, and its count,
    a later statement, sees the first one's items. SQLite serialises writers anyway.
    """
    session.execute(select(Ingestion.id).where(Ingestion.id == ingestion_id).with_for_update())
    pending = exists().where(
        IngestionItem.ingestion_id == ingestion_id, IngestionItem.status == ItemStatus.PENDING
    )
    result = session.execute(
        update(Ingestion)
        .where(
            Ingestion.id == ingestion_id,
            Ingestion.status == IngestionStatus.RUNNING,
            ~pending,
        )
        .values(status=IngestionStatus.DONE, finished_at=datetime.now(UTC))
    )
    return bool(getattr(result, "rowcount", 0))
