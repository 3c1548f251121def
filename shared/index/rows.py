"""Columnar batches of objects as the index consumes them (decoded from database rows).

Array contract of :class:`ObjectRows` (``n`` objects of one embedding space, dimension ``D``):

* ``ids``: int64 ``[n]`` object ids (the FAISS ids);
* ``image_ids``: int64 ``[n]``;
* ``class_ids``: int32 ``[n]``; ``scores``: float32 ``[n]`` (detector confidence);
* ``x1``, ``y1``, ``x2``, ``y2``: float32 ``[n]`` each, the box in original-image pixels (after
  EXIF orientation; the database keeps doubles, float32 holds them to within 5e-4 px below
  16,384 px);
* ``sides``: float32 ``[n]``, ``min(x2 - x1, y2 - y1)`` of the box in original-image pixels
  (computed from the database's doubles; the box-side filter reads it);
* ``vectors``: float32 ``[n, D]``, C-contiguous, L2-normalised (inner product = cosine).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


# The per-object columns (everything but the vectors), with their dtypes.
COLUMNS: dict[str, type] = {
    "ids": np.int64,
    "image_ids": np.int64,
    "class_ids": np.int32,
    "scores": np.float32,
    "x1": np.float32,
    "y1": np.float32,
    "x2": np.float32,
    "y2": np.float32,
    "sides": np.float32,
}


@dataclass
class ObjectRows:
    ids: np.ndarray
    image_ids: np.ndarray
    class_ids: np.ndarray
    scores: np.ndarray
    x1: np.ndarray
    y1: np.ndarray
    x2: np.ndarray
    y2: np.ndarray
    sides: np.ndarray
    vectors: np.ndarray
    # Objects that cannot be indexed: object id -> reason (wrong vector length, NaN, ...).
    rejected: dict[int, str] = field(default_factory=dict)

    @classmethod
    def from_columns(
        cls,
        columns: Mapping[str, np.ndarray],
        vectors: np.ndarray,
        rejected: dict[int, str] | None = None,
    ) -> ObjectRows:
        """Rows from their per-object columns by name (:data:`COLUMNS`) and the vectors."""
        return cls(
            ids=columns["ids"],
            image_ids=columns["image_ids"],
            class_ids=columns["class_ids"],
            scores=columns["scores"],
            x1=columns["x1"],
            y1=columns["y1"],
            x2=columns["x2"],
            y2=columns["y2"],
            sides=columns["sides"],
            vectors=vectors,
            rejected=dict(rejected or {}),
        )

    @classmethod
    def zeros(cls, n: int, dim: int) -> ObjectRows:
        """``n`` rows of zeros (to fill in place)."""
        columns: dict[str, np.ndarray] = {name: np.zeros(n, d) for name, d in COLUMNS.items()}
        return cls.from_columns(columns, np.zeros((n, dim), np.float32))

    @classmethod
    def empty(cls, dim: int) -> ObjectRows:
        return cls.zeros(0, dim)

    def columns(self) -> dict[str, np.ndarray]:
        """The per-object columns by name (:data:`COLUMNS`), not the vectors."""
        return {name: getattr(self, name) for name in COLUMNS}

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def take(self, keep: np.ndarray) -> ObjectRows:
        """The subset selected by ``keep`` (bool mask ``[n]`` or int positions)."""
        return self.from_columns(
            {name: column[keep] for name, column in self.columns().items()},
            np.ascontiguousarray(self.vectors[keep]),
            self.rejected,
        )

    def slice(self, start: int, stop: int) -> ObjectRows:
        """Rows ``[start, stop)`` as views (no copy)."""
        return self.from_columns(
            {name: column[start:stop] for name, column in self.columns().items()},
            self.vectors[start:stop],
        )

    @classmethod
    def concat(cls, parts: Sequence[ObjectRows], dim: int) -> ObjectRows:
        if not parts:
            return cls.empty(dim)
        rejected: dict[int, str] = {}
        for part in parts:
            rejected.update(part.rejected)
        return cls.from_columns(
            {name: np.concatenate([getattr(p, name) for p in parts]) for name in COLUMNS},
            np.ascontiguousarray(np.concatenate([p.vectors for p in parts])),
            rejected,
        )


# Column order of the SELECTs that feed :func:`decode_rows`.
ROW_COLUMNS = ("id", "image_id", "x1", "y1", "x2", "y2", "class_id", "score", "vector")


def decode_rows(rows: Iterable[Sequence[Any]], dim: int) -> ObjectRows:
    """Database rows (columns :data:`ROW_COLUMNS`) -> :class:`ObjectRows`.

    A row whose vector is not ``dim`` finite float32 values is left out and recorded in
    ``rejected`` with the reason (logged once here, naming the object).
    """
    ids: list[int] = []
    image_ids: list[int] = []
    boxes: list[tuple[float, float, float, float]] = []
    class_ids: list[int] = []
    scores: list[float] = []
    blobs: list[bytes] = []
    rejected: dict[int, str] = {}
    expected = dim * 4
    for row in rows:
        object_id = int(row[0])
        blob = bytes(row[8])
        if len(blob) != expected:
            reason = f"vector has {len(blob)} bytes, the space's dimension {dim} needs {expected}"
            rejected[object_id] = reason
            log.error("object %d cannot be indexed: %s", object_id, reason)
            continue
        ids.append(object_id)
        image_ids.append(int(row[1]))
        boxes.append((float(row[2]), float(row[3]), float(row[4]), float(row[5])))
        class_ids.append(int(row[6]))
        scores.append(float(row[7]))
        blobs.append(blob)
    vectors = np.frombuffer(b"".join(blobs), dtype="<f4").astype(np.float32).reshape(-1, dim)
    box = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    out = ObjectRows(
        ids=np.asarray(ids, np.int64),
        image_ids=np.asarray(image_ids, np.int64),
        class_ids=np.asarray(class_ids, np.int32),
        scores=np.asarray(scores, np.float32),
        x1=box[:, 0].astype(np.float32),
        y1=box[:, 1].astype(np.float32),
        x2=box[:, 2].astype(np.float32),
        y2=box[:, 3].astype(np.float32),
        sides=np.minimum(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]).astype(np.float32),
        vectors=np.ascontiguousarray(vectors),
        rejected=rejected,
    )
    finite = np.isfinite(out.vectors).all(axis=1) if len(out) else np.ones(0, bool)
    if not finite.all():
        for object_id in out.ids[~finite]:
            reason = "vector contains NaN or infinity"
            rejected[int(object_id)] = reason
            log.error("object %d cannot be indexed: %s", int(object_id), reason)
        out = out.take(finite)
        out.rejected = rejected
    return out
