"""Shared search logic of the three search routes: filters, index calls, hit assembly.

Tensor contract: query vectors are float32 ``[Q, D]``, L2-normalised, in the embedding space
``space_id``; scores are cosine similarities (inner products of unit vectors). Hits are
assembled from the index's in-memory metadata and the space's memoised class names: a search
reads the database only for what it starts from (the query object, the examples, the space of
an uploaded image's model) and for an ingestion filter.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Connection, bindparam, select

from api.dependencies import FilterParams
from api.errors import ApiError
from api.presenters import (
    OBJECT_COLUMNS,
    IndexedHit,
    ObjectRow,
    group_by_image,
    hit_out,
    indexed_hits,
)
from api.resources import Resources
from api.schemas import GroupBy, Hit, ImageGroup
from shared.annotations.filters import UnknownLabelClassError, class_filter, label_codes
from shared.class_names import resolve_class_ids, unknown_classes_message
from shared.db.models import DetectedObject
from shared.index import SearchFilter
from shared.ingestion.label_rows import label_names

# Built once: SQLAlchemy memoises a statement's cache key on the statement object, so this skips
# the per-request construction and cache-key walk. Plain column rows, not ORM entities: cheaper.
_OBJECT_BY_ID = select(*OBJECT_COLUMNS).where(DetectedObject.id == bindparam("id"))

# group_by=image asks the index for this many object hits per requested image, so that images
# with several matching objects still leave room for k distinct images.
GROUP_OVERFETCH = 5


@dataclass
class Ranked:
    hits: list[Hit]
    groups: list[ImageGroup] | None


def resolve_classes(names: Sequence[str], classes: Sequence[str]) -> list[int]:
    """Class names or ids → class ids of a space; unknown names are a 422 naming them."""
    ids, unknown = resolve_class_ids(names, classes)
    if unknown:
        raise ApiError(
            422,
            "unknown_class",
            unknown_classes_message(unknown, names, "this model"),
            {"unknown": [u[:64] for u in unknown[:50]], "classes": list(names[:1000])},
        )
    return ids


def build_filter(
    resources: Resources, space_id: int, params: FilterParams, exclude: Sequence[int] = ()
) -> SearchFilter | None:
    """The index filter for ``params`` (class names are looked up only when given)."""
    class_ids = (
        resolve_classes(resources.class_names(space_id), params.classes) if params.classes else None
    )
    if params.origin is not None or params.label_classes:
        class_ids = _with_labels(resources, space_id, params, class_ids)
    if (
        class_ids is None
        and params.min_score is None
        and not params.ingestions
        and params.min_box_side is None
        and params.min_similarity is None
        and not exclude
    ):
        return None
    return SearchFilter(
        class_ids=class_ids,
        min_score=params.min_score,
        ingestion_ids=list(params.ingestions) or None,
        min_box_side=params.min_box_side,
        min_similarity=params.min_similarity,
        exclude_object_ids=list(exclude) or None,
    )


def _with_labels(
    resources: Resources, space_id: int, params: FilterParams, class_ids: list[int] | None
) -> list[int]:
    """The class filter with ``origin`` and ``label_classes`` (see shared.annotations.filters)."""
    with resources.db.read() as session:
        labels = label_names(session)
    try:
        label_ids = label_codes(labels, params.label_classes) if params.label_classes else None
    except UnknownLabelClassError as exc:
        raise ApiError(
            422,
            "unknown_label_class",
            str(exc),
            {"unknown": [u[:64] for u in exc.unknown[:50]], "label_classes": exc.known[:1000]},
        ) from None
    keep = class_filter(
        class_ids,
        len(resources.class_names(space_id)),
        None if params.origin is None else params.origin.value,
        label_ids,
        sorted(labels),
    )
    assert keep is not None  # an origin or label classes were given
    return keep


def fetch_k(k: int, group_by: GroupBy) -> int:
    return k * GROUP_OVERFETCH if group_by is GroupBy.image else k


def search_vectors(
    resources: Resources,
    space_id: int,
    queries: np.ndarray,
    k: int,
    flt: SearchFilter | None,
    *,
    kind: str,
    wait: bool = True,
) -> list[list[tuple[int, float]]]:
    """Search the index: ``(object_id, score)`` lists.

    ``queries``: float32 ``[Q, D]``, L2-normalised, in space ``space_id``. ``wait=False``
    raises :class:`~shared.index.rwlock.LockBusyError` instead of waiting while the index is being
    changed (for callers on the event loop).
    """
    if queries.shape[0] == 0:
        return []
    start = time.perf_counter()
    results = resources.index.search(
        space_id, np.ascontiguousarray(queries, np.float32), k, flt, blocking=wait
    )
    resources.metrics.search_seconds.labels(kind).observe(time.perf_counter() - start)
    return [[(int(hit.object_id), float(hit.score)) for hit in hits] for hits in results]


def rank(
    resources: Resources,
    space_id: int,
    results: list[list[tuple[int, float]]],
    k: int,
    group_by: GroupBy,
    *,
    wait: bool = True,
) -> list[Ranked]:
    """Assemble ranked hits (and groups) per query from the index's metadata (no SQL).

    ``results``: per query, ``(object_id, score)`` best first, from :func:`search_vectors` on
    space ``space_id``. An id is kept only if it is still live in this process's index when the
    hits are assembled. Objects deleted through this API are removed from the index before the
    deletion answers (``api/deletion.py``), so they never appear afterwards; objects deleted by
    another process stay visible until this process's index catch-up applies their tombstones
    (within ``index_poll_interval_s``: the same lag the vectors have).
    """
    wanted = list({object_id for hits in results for object_id, _ in hits})
    rows: dict[int, IndexedHit] = {}
    if wanted:
        meta = resources.index.object_metadata(space_id, wanted, blocking=wait)
        with resources.db.read() as session:
            labels = label_names(session) if (meta.class_ids < 0).any() else {}
        rows = indexed_hits(meta, resources.class_names(space_id), labels)
    ranked: list[Ranked] = []
    for hits in results:
        out = [hit_out(rows[oid], score) for oid, score in hits if oid in rows]
        if group_by is GroupBy.image:
            groups = group_by_image(out, k)
            ranked.append(Ranked(hits=[h for g in groups for h in g.hits], groups=groups))
        else:
            ranked.append(Ranked(hits=out[:k], groups=None))
    return ranked


def load_object(connection: Connection, object_id: int) -> ObjectRow | None:
    """The object's hit columns, space, ordinal and vector; ``None`` when it does not exist."""
    return connection.execute(_OBJECT_BY_ID, {"id": object_id}).first()


def vector_of(obj: ObjectRow | DetectedObject) -> np.ndarray:
    """The stored vector: float32 little-endian bytes → float32 ``[D]``."""
    return np.frombuffer(obj.vector, dtype="<f4").astype(np.float32)
