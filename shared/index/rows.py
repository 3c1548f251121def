"""Columnar batches of objects as the index consumes them (decoded from database rows).

Array contract of :class:`ObjectRows` (``n`` objects of one embedding space, dimension ``D``):

* ``ids``: int64 ``[n]`` object ids (the FAISS ids);
* ``image_ids``: int64 ``[n]``;
* ``class_ids``: int32 ``[n]``; ``scores``: float32 ``[n]`` (detector confidence);
* ``sides``: float32 ``[n]``, ``min(x2 - x1, y2 - y1)`` of the box in original-image pixels;
* ``vectors``: float32 ``[n, D]``, C-contiguous, L2-normalised (inner product = cosine).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class ObjectRows:
    ids: np.ndarray
    image_ids: np.ndarray
    class_ids: np.ndarray
    scores: np.ndarray
    sides: np.ndarray
    vectors: np.ndarray
    # Objects that cannot be indexed: object id -> reason (wrong vector length, NaN, ...).
    rejected: dict[int, str] = field(default_factory=dict)

    @classmethod
    def empty(cls, dim: int) -> ObjectRows:
        return cls(
            ids=np.zeros(0, np.int64),
            image_ids=np.zeros(0, np.int64),
            class_ids=np.zeros(0, np.int32),
            scores=np.zeros(0, np.float32),
            sides=np.zeros(0, np.float32),
            vectors=np.zeros((0, dim), np.float32),
        )

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def take(self, keep: np.ndarray) -> ObjectRows:
        """The subset selected by ``keep`` (bool mask ``[n]`` or int positions)."""
        return ObjectRows(
            ids=self.ids[keep],
            image_ids=self.image_ids[keep],
            class_ids=self.class_ids[keep],
            scores=self.scores[keep],
            sides=self.sides[keep],
            vectors=np.ascontiguousarray(self.vectors[keep]),
            rejected=dict(self.rejected),
        )

    def slice(self, start: int, stop: int) -> ObjectRows:
        """Rows ``[start, stop)`` as views (no copy)."""
        return ObjectRows(
            ids=self.ids[start:stop],
            image_ids=self.image_ids[start:stop],
            class_ids=self.class_ids[start:stop],
            scores=self.scores[start:stop],
            sides=self.sides[start:stop],
            vectors=self.vectors[start:stop],
        )

    @classmethod
    def concat(cls, parts: Sequence[ObjectRows], dim: int) -> ObjectRows:
        if not parts:
            return cls.empty(dim)
        rejected: dict[int, str] = {}
        for part in parts:
            rejected.update(part.rejected)
        return cls(
            ids=np.concatenate([p.ids for p in parts]),
            image_ids=np.concatenate([p.image_ids for p in parts]),
            class_ids=np.concatenate([p.class_ids for p in parts]),
            scores=np.concatenate([p.scores for p in parts]),
            sides=np.concatenate([p.sides for p in parts]),
            vectors=np.ascontiguousarray(np.concatenate([p.vectors for p in parts])),
            rejected=rejected,
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
