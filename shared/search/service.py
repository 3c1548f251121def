"""The search service: a query (stored object, image + boxes/pick, examples), a selection and
``k`` → hits. Used by the API routes and the CLI, in process.

Tensor contract: query vectors are float32 ``[Q, D]``, L2-normalised, in the embedding space
``space_id``; scores are cosine similarities (inner products of unit vectors). A search reads
the database only for what it starts from (the query object, the examples, the space of an
uploaded image's model), for the space's class names (once per space) and, inside the index,
for an ingestion filter.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import bindparam, select

from shared.db.database import Database
from shared.db.models import DetectedObject, EmbeddingSpace
from shared.errors import NotFound, Unavailable
from shared.index.search_filter import SearchFilter
from shared.ingestion.label_rows import label_names
from shared.search.boxes import pick_detections
from shared.search.embedding import Embedded, embed_query
from shared.search.examples import example_query
from shared.search.filters import index_filter
from shared.search.hits import OBJECT_COLUMNS, object_out, vector_of
from shared.search.models import (
    Box,
    ExamplesResponse,
    GroupBy,
    ImageSearchResponse,
    Pick,
    QueryResult,
    SimilarResponse,
)
from shared.search.ranking import Ranked, Results, fetch_k, rank
from shared.selection import Selection

if TYPE_CHECKING:
    from shared.index import IndexManager
    from shared.yolov7.detector import Detector

log = logging.getLogger(__name__)

# Built once: SQLAlchemy memoises a statement's cache key on the statement object, so this skips
# the per-request construction and cache-key walk. Plain column rows, not ORM entities: cheaper.
_OBJECT_BY_ID = select(*OBJECT_COLUMNS).where(DetectedObject.id == bindparam("id"))


def _ignore(*_: object) -> None:
    return None


@dataclass(frozen=True)
class Similar:
    """A search by stored object and the seconds its index search took."""

    response: SimilarResponse
    index_seconds: float


@dataclass
class SearchService:
    """Searches of one process, over its database and index (both built by the entry point).

    ``detector`` loads the model on first use (the process's :class:`ModelProvider`);
    ``observe_search(kind, seconds)`` and ``observe_embed(seconds)`` receive timings (the API's
    metrics). Thread-safe: the API calls it from its thread pool.
    """

    db: Database
    index: IndexManager
    detector: Callable[[], Detector]
    max_image_pixels: int
    observe_search: Callable[[str, float], None] = _ignore
    observe_embed: Callable[[float], None] = _ignore
    # Class names per embedding space id: immutable for a space (its key covers the model).
    _class_names: dict[int, tuple[str, ...]] = field(default_factory=dict, repr=False)
    _class_names_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def class_names(self, space_id: int) -> tuple[str, ...]:
        """The space's class names, index = class id (read once per space, then memoised).

        An unknown space gives ``()`` and is not memoised (it may be created later).
        """
        names = self._class_names.get(space_id)
        if names is not None:
            return names
        with self._class_names_lock:
            names = self._class_names.get(space_id)
            if names is None:
                with self.db.read() as session:
                    stored = session.scalar(
                        select(EmbeddingSpace.class_names).where(EmbeddingSpace.id == space_id)
                    )
                if stored is None:
                    return ()
                names = self._class_names[space_id] = tuple(str(name) for name in stored)
            return names

    def space_id(self, key: str) -> int | None:
        """The id of the embedding space ``key`` (a model's), ``None`` until one of its
        objects is stored."""
        with self.db.read() as session:
            return session.scalar(select(EmbeddingSpace.id).where(EmbeddingSpace.key == key))

    def model(self) -> Detector:
        """The model (loaded on first use); ``model_unavailable`` if it cannot be loaded."""
        try:
            return self.detector()
        except Exception as exc:
            log.exception("the model could not be loaded")
            # The message names the kind of failure, never the server path of the weights.
            raise Unavailable(
                "model_unavailable", f"the model could not be loaded ({type(exc).__name__})"
            ) from None

    def runs_inline(self, selection: Selection) -> bool:
        """Whether a search by id is cheap enough to run on an event loop (see
        ``api/routes/search.py``): SQLite, no candidate restriction, a cheap index."""
        return (
            self.db.dialect == "sqlite"
            and not selection.restricts_candidates
            and self.index.searches_are_cheap()
        )

    def similar(
        self,
        object_id: int,
        k: int,
        selection: Selection = Selection(),
        group_by: GroupBy = GroupBy.object,
        *,
        include_self: bool = False,
        wait: bool = True,
    ) -> Similar:
        """Nearest neighbours of a stored object by its stored vector (never re-embedded).

        ``wait=False``: raise :class:`~shared.index.rwlock.LockBusyError` rather than wait for
        the index (nothing is changed before that point, so the call can be repeated).
        Raises ``object_not_found``, ``unknown_class``.
        """
        with self.db.read_connection() as connection:
            obj = connection.execute(_OBJECT_BY_ID, {"id": object_id}).first()
        if obj is None:
            raise NotFound("object_not_found", f"object {object_id} does not exist")
        names = self.class_names(obj.space_id)
        flt = index_filter(
            selection, names, () if include_self else (object_id,), self._labels_for(selection)
        )
        began = time.perf_counter()
        results = self._search(
            obj.space_id, vector_of(obj)[None, :], fetch_k(k, group_by), flt, "object", wait
        )
        index_s = time.perf_counter() - began
        ranked = rank(
            self.index, obj.space_id, names, results, k, group_by, wait=wait, labels=self.labels
        )[0]
        response = SimilarResponse(query=object_out(obj), hits=ranked.hits, groups=ranked.groups)
        return Similar(response, index_s)

    def embed(self, data: bytes, name: str, boxes: list[Box]) -> Embedded:
        """Decode the uploaded file ``name`` and run the model on it (blocking): see
        :func:`shared.search.embedding.embed_query` for what it raises."""
        began = time.perf_counter()
        embedded = embed_query(
            data, name, boxes, max_pixels=self.max_image_pixels, detector=self.model
        )
        self.observe_embed(time.perf_counter() - began)
        return embedded

    def search_embedded(
        self,
        emb: Embedded,
        k: int,
        selection: Selection = Selection(),
        group_by: GroupBy = GroupBy.object,
        pick: Pick = Pick.all,
    ) -> ImageSearchResponse:
        """Search for an embedded image's boxes, or for its detections chosen by ``pick``."""
        queries, vectors = _queries(emb, pick)
        space_id = self.space_id(emb.space_key)
        if space_id is not None and queries:
            names = self.class_names(space_id)
            flt = index_filter(selection, names, labels=self._labels_for(selection))
            results = self._search(space_id, vectors, fetch_k(k, group_by), flt, "image")
            ranked = rank(self.index, space_id, names, results, k, group_by, labels=self.labels)
            for query, found in zip(queries, ranked, strict=True):
                query.hits, query.groups = found.hits, found.groups
        return ImageSearchResponse(
            width=emb.width, height=emb.height, space_id=space_id, queries=queries
        )

    def search_image(
        self,
        data: bytes,
        name: str,
        boxes: list[Box],
        k: int,
        selection: Selection = Selection(),
        group_by: GroupBy = GroupBy.object,
        pick: Pick = Pick.all,
    ) -> ImageSearchResponse:
        """:meth:`embed` then :meth:`search_embedded` (the API runs them in separate pools)."""
        return self.search_embedded(self.embed(data, name, boxes), k, selection, group_by, pick)

    def search_examples(
        self,
        positive: list[int],
        negative: list[int],
        k: int,
        selection: Selection = Selection(),
        group_by: GroupBy = GroupBy.object,
    ) -> ExamplesResponse:
        """Rocchio query of the examples (:mod:`shared.search.examples`); the examples are
        never among the hits."""
        with self.db.read() as session:
            query = example_query(session, positive, negative)
        names = self.class_names(query.space_id)
        flt = index_filter(
            selection,
            names,
            exclude=query.positive + query.negative,
            labels=self._labels_for(selection),
        )
        results = self._search(
            query.space_id, query.vector[None, :], fetch_k(k, group_by), flt, "examples"
        )
        ranked: Ranked = rank(
            self.index, query.space_id, names, results, k, group_by, labels=self.labels
        )[0]
        return ExamplesResponse(
            positive=query.positive, negative=query.negative, hits=ranked.hits, groups=ranked.groups
        )

    def labels(self) -> dict[int, str]:
        """Every label class of labelled datasets, by its (negative) class-id code."""
        with self.db.read() as session:
            return label_names(session)

    def _labels_for(self, selection: Selection) -> dict[int, str] | None:
        """The label classes when ``selection`` filters by origin or label class (a read)."""
        return self.labels() if selection.labelled else None

    def _search(
        self,
        space_id: int,
        queries: np.ndarray,
        k: int,
        flt: SearchFilter | None,
        kind: str,
        wait: bool = True,
    ) -> Results:
        """``(object_id, score)`` lists per query row of float32 ``[Q, D]`` ``queries``."""
        if queries.shape[0] == 0:
            return []
        began = time.perf_counter()
        results = self.index.search(
            space_id, np.ascontiguousarray(queries, np.float32), k, flt, blocking=wait
        )
        self.observe_search(kind, time.perf_counter() - began)
        return [[(int(hit.object_id), float(hit.score)) for hit in hits] for hits in results]


def _queries(emb: Embedded, pick: Pick) -> tuple[list[QueryResult], np.ndarray]:
    """The regions to search for (hits still empty) and their vectors, float32 ``[Q, D]``."""
    if emb.query_boxes:
        return [QueryResult(source="box", box=box, hits=[]) for box in emb.query_boxes], (
            emb.query_vectors
        )
    chosen = pick_detections(emb.det_boxes, emb.det_scores, emb.width, emb.height, pick)
    queries = []
    for i in chosen:
        x1, y1, x2, y2 = (float(v) for v in emb.det_boxes[i])
        cls = int(emb.det_classes[i])
        queries.append(
            QueryResult(
                source="detection",
                box=Box(x1=x1, y1=y1, x2=x2, y2=y2),
                class_id=cls,
                class_name=emb.class_names[cls] if cls < len(emb.class_names) else str(cls),
                detector_score=float(emb.det_scores[i]),
                hits=[],
            )
        )
    return queries, emb.det_vectors[chosen] if chosen else emb.det_vectors[:0]
