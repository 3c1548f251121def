"""Select objects (space, classes, ingestions, detector score) and read them in bounded batches.

A :class:`~shared.selection.Selection` is resolved once (names → ids, checked against the
database) into a :class:`ResolvedSelection` and then read with keyset pagination on the object
id (``id > last ORDER BY id LIMIT n``), each batch in its own short read transaction, up to the
largest id that existed when it was resolved: rows added later are not read, so a report or an
export describes one set of objects, and no batch ever holds more than ``batch_size`` rows.

Array contract of :class:`ObjectBatch`: ``ids``/``image_ids`` int64 [n], ``class_ids`` int32
[n], ``scores`` float64 [n], ``boxes`` float64 [n, 4] (x1, y1, x2, y2 in original-image pixels
after EXIF orientation), ``vectors`` float32 [n, dim] (L2-normalised, as stored) or None.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from shared.db.database import Database
from shared.db.models import DetectedObject, EmbeddingSpace, Ingestion, IngestionItem
from shared.ingestion.label_rows import label_names
from shared.reports.errors import ReportError
from shared.search.filters import labelled_class_ids
from shared.search.hits import HIT_COLUMNS
from shared.selection import Selection, SelectionError, resolve_classes

DEFAULT_BATCH = 4096
# Bound on ids in one ``IN (...)`` list (SQLite allows 32766 bound variables).
IN_CHUNK = 4000


@dataclass(frozen=True)
class ResolvedSelection:
    """A resolved selection: every id exists; ``max_id`` freezes the set of objects."""

    space_id: int
    dim: int
    class_names: tuple[str, ...]  # of the space, indexed by class id
    class_ids: tuple[int, ...] | None  # None: every class
    ingestion_ids: tuple[int, ...]
    min_score: float | None
    max_id: int
    # Labelled datasets (issue 20): label class names by class-id code (negative ids, see
    # shared.ingestion.label_rows.label_code), and the origin / label classes asked for.
    label_names: tuple[tuple[int, str], ...] = ()
    origin: str | None = None
    label_classes: tuple[str, ...] = ()

    def describe(self) -> dict[str, Any]:
        return {
            "space_id": self.space_id,
            "dim": self.dim,
            "classes": (
                None if self.class_ids is None else [self.class_name(c) for c in self.class_ids]
            ),
            "ingestions": list(self.ingestion_ids),
            "min_score": self.min_score,
            "max_object_id": self.max_id,
            "origin": self.origin,
            "label_classes": list(self.label_classes),
        }

    def class_name(self, class_id: int) -> str:
        if class_id < 0:
            return dict(self.label_names).get(class_id, str(class_id))
        if 0 <= class_id < len(self.class_names):
            return self.class_names[class_id]
        return str(class_id)


@dataclass
class ObjectBatch:
    ids: np.ndarray
    image_ids: np.ndarray
    class_ids: np.ndarray
    class_names: list[str]
    scores: np.ndarray
    boxes: np.ndarray
    vectors: np.ndarray | None = field(default=None)

    def __len__(self) -> int:
        return int(self.ids.size)

    def take(self, rows: np.ndarray) -> ObjectBatch:
        """The rows at int [m] positions ``rows``, in that order."""
        return ObjectBatch(
            ids=self.ids[rows],
            image_ids=self.image_ids[rows],
            class_ids=self.class_ids[rows],
            class_names=[self.class_names[i] for i in rows.tolist()],
            scores=self.scores[rows],
            boxes=self.boxes[rows],
            vectors=None if self.vectors is None else self.vectors[rows],
        )


def _default_space(session: Session) -> int:
    spaces = session.scalars(select(DetectedObject.space_id).distinct()).all()
    if not spaces:
        raise SelectionError("empty_selection", "there are no objects in the database")
    if len(spaces) > 1:
        raise SelectionError(
            "space_required",
            f"objects of {len(spaces)} embedding spaces exist; choose one with space_id "
            "(vectors of different spaces cannot be compared)",
            {"space_ids": sorted(int(s) for s in spaces)},
        )
    return int(spaces[0])


def resolve_selection(session: Session, wanted: Selection = Selection()) -> ResolvedSelection:
    """Check every named item and freeze the set of objects; raises
    :class:`~shared.selection.SelectionError`. Reports and exports use ``space_id``,
    ``classes``, ``ingestions``, ``min_score``, ``origin`` and ``label_classes`` (the other
    fields are search-only)."""
    space_id = wanted.space_id
    if space_id is None:
        space_id = _default_space(session)
    space = session.get(EmbeddingSpace, space_id)
    if space is None:
        raise SelectionError("space_not_found", f"embedding space {space_id} does not exist")
    names = tuple(str(n) for n in space.class_names or [])
    class_ids = resolve_classes(names, wanted.classes) if wanted.classes else None
    labels = label_names(session)
    if wanted.labelled:
        class_ids = tuple(sorted(set(labelled_class_ids(wanted, class_ids, len(names), labels))))
    ingestions = sorted(set(wanted.ingestions))
    if ingestions:
        found = set(session.scalars(select(Ingestion.id).where(Ingestion.id.in_(ingestions))).all())
        missing = [i for i in ingestions if i not in found]
        if missing:
            raise SelectionError(
                "ingestion_not_found",
                f"ingestion(s) {', '.join(map(str, missing[:20]))} do not exist",
                {"missing": missing[:1000]},
            )
    max_id = session.scalar(select(func.max(DetectedObject.id))) or 0
    return ResolvedSelection(
        space_id=space.id,
        dim=int(space.dim),
        class_names=names,
        class_ids=class_ids,
        ingestion_ids=tuple(ingestions),
        min_score=wanted.min_score,
        max_id=int(max_id),
        label_names=tuple(sorted(labels.items())),
        origin=wanted.origin,
        label_classes=wanted.label_classes,
    )


def conditions(selection: ResolvedSelection) -> list[ColumnElement[bool]]:
    """WHERE clauses on :class:`DetectedObject` for the selection."""
    where: list[ColumnElement[bool]] = [
        DetectedObject.space_id == selection.space_id,
        DetectedObject.id <= selection.max_id,
    ]
    if selection.class_ids is not None:
        where.append(DetectedObject.class_id.in_(selection.class_ids))
    if selection.min_score is not None:
        where.append(DetectedObject.score >= selection.min_score)
    if selection.ingestion_ids:
        where.append(
            DetectedObject.image_id.in_(
                select(IngestionItem.image_id).where(
                    IngestionItem.ingestion_id.in_(selection.ingestion_ids)
                )
            )
        )
    return where


def count_objects(session: Session, selection: ResolvedSelection) -> int:
    return int(
        session.scalar(select(func.count(DetectedObject.id)).where(*conditions(selection))) or 0
    )


def class_counts(session: Session, selection: ResolvedSelection) -> dict[int, int]:
    """class id → number of selected objects."""
    rows = session.execute(
        select(DetectedObject.class_id, func.count(DetectedObject.id))
        .where(*conditions(selection))
        .group_by(DetectedObject.class_id)
    ).all()
    return {int(c): int(n) for c, n in rows}


_META_COLUMNS = HIT_COLUMNS


def decode_vectors(blobs: Sequence[bytes], ids: Sequence[int], dim: int) -> np.ndarray:
    """Stored vector bytes (float32 LE) → float32 [n, dim]; a wrong length names the object."""
    expected = 4 * dim
    for blob, object_id in zip(blobs, ids, strict=True):
        if len(blob) != expected:
            raise ReportError(
                "bad_vector",
                f"object {object_id} has a vector of {len(blob)} bytes; its space has "
                f"dim {dim} ({expected} bytes)",
                {"object_id": int(object_id)},
            )
    if not blobs:
        return np.empty((0, dim), dtype=np.float32)
    flat = np.frombuffer(b"".join(blobs), dtype="<f4")
    return flat.reshape(len(blobs), dim).astype(np.float32, copy=False)


def _batch_from_rows(rows: Sequence[Any], dim: int, with_vectors: bool) -> ObjectBatch:
    n = len(rows)
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=n)
    return ObjectBatch(
        ids=ids,
        image_ids=np.fromiter((r[1] for r in rows), dtype=np.int64, count=n),
        class_ids=np.fromiter((r[2] for r in rows), dtype=np.int32, count=n),
        class_names=[str(r[3]) for r in rows],
        scores=np.fromiter((r[4] for r in rows), dtype=np.float64, count=n),
        boxes=np.array([r[5:9] for r in rows], dtype=np.float64).reshape(n, 4),
        vectors=decode_vectors([r[9] for r in rows], ids.tolist(), dim) if with_vectors else None,
    )


def iter_batches(
    db: Database,
    selection: ResolvedSelection,
    *,
    batch_size: int = DEFAULT_BATCH,
    with_vectors: bool = True,
) -> Iterator[ObjectBatch]:
    """Every selected object, ordered by id, ``batch_size`` at a time (one read txn each)."""
    columns = (*_META_COLUMNS, DetectedObject.vector) if with_vectors else _META_COLUMNS
    where = conditions(selection)
    last = 0
    while True:
        with db.read() as session:
            rows = session.execute(
                select(*columns)
                .where(*where, DetectedObject.id > last)
                .order_by(DetectedObject.id)
                .limit(batch_size)
            ).all()
        if not rows:
            return
        batch = _batch_from_rows(rows, selection.dim, with_vectors)
        last = int(batch.ids[-1])
        yield batch
        if len(rows) < batch_size:
            return


def iter_keys(
    db: Database, selection: ResolvedSelection, *, batch_size: int = 4 * DEFAULT_BATCH
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(ids int64 [n], class_ids int32 [n]) of every selected object: the cheap sampling pass."""
    where = conditions(selection)
    last = 0
    while True:
        with db.read() as session:
            rows = session.execute(
                select(DetectedObject.id, DetectedObject.class_id)
                .where(*where, DetectedObject.id > last)
                .order_by(DetectedObject.id)
                .limit(batch_size)
            ).all()
        if not rows:
            return
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        classes = np.fromiter((r[1] for r in rows), dtype=np.int32, count=len(rows))
        last = int(ids[-1])
        yield ids, classes
        if len(rows) < batch_size:
            return


def fetch_objects(db: Database, selection: ResolvedSelection, ids: np.ndarray) -> ObjectBatch:
    """The objects with int64 [m] ``ids`` (with vectors), in the order of ``ids``."""
    parts: list[Any] = []
    columns = (*_META_COLUMNS, DetectedObject.vector)
    with db.read() as session:
        for start in range(0, ids.size, IN_CHUNK):
            chunk = ids[start : start + IN_CHUNK].tolist()
            parts.extend(
                session.execute(select(*columns).where(DetectedObject.id.in_(chunk))).all()
            )
    batch = _batch_from_rows(parts, selection.dim, with_vectors=True)
    position = {int(i): n for n, i in enumerate(batch.ids.tolist())}
    order = np.array([position[int(i)] for i in ids.tolist() if int(i) in position], dtype=np.int64)
    return batch.take(order)


def ingestions_of(session: Session, image_ids: Sequence[int]) -> dict[int, list[int]]:
    """image id → the ingestions that contain it (an image may come from several)."""
    out: dict[int, list[int]] = {}
    unique = sorted(set(image_ids))
    for start in range(0, len(unique), IN_CHUNK):
        rows = session.execute(
            select(IngestionItem.image_id, IngestionItem.ingestion_id)
            .where(IngestionItem.image_id.in_(unique[start : start + IN_CHUNK]))
            .distinct()
        ).all()
        for image_id, ingestion_id in rows:
            if image_id is not None:
                out.setdefault(int(image_id), []).append(int(ingestion_id))
    return out
