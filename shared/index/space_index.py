"""One embedding space's FAISS index, its filter metadata and the database point it covers.

FAISS ids are object ids: IVF indexes store them natively (``add_with_ids``), every other type
is wrapped in ``IndexIDMap2``. Vectors are float32 ``[n, D]``, L2-normalised, compared by inner
product (cosine); scores returned are those inner products, best first.

Thread contract: the caller holds ``lock.write()`` around :meth:`add`/:meth:`remove` and
``lock.read()`` around :meth:`search`/:meth:`main_ids` (see :mod:`shared.index.rwlock`).
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import faiss
import numpy as np

from shared.index.cursor import Cursor
from shared.index.metadata import ObjectTable
from shared.index.neighbours import Candidates, Neighbours, merge, search_params
from shared.index.policy import HNSW_M, RECALL_TARGET, IndexPlan, rerank_depth
from shared.index.rows import ObjectRows
from shared.index.rwlock import RWLock
from shared.index.tuning import (
    EF_STEPS,
    NPROBE_STEPS,
    TUNING_K,
    TUNING_QUERIES,
    exact_neighbours,
    tune,
)
from shared.index.vector_store import VectorStore

log = logging.getLogger(__name__)

# A filtered search over an approximate index scans the matching objects exactly when there
# are at most this many of them (cheaper than a widened approximate pass, and exact).
EXACT_SCAN_MAX = 20_000
# ... or when fewer than this fraction of the live objects match.
EXACT_SCAN_SELECTIVITY = 0.02
EF_SEARCH_MAX = 4096
RECONSTRUCT_CHUNK = 32_768
TRAIN_POINTS_PER_LIST = 64
MIN_TRAIN_POINTS = 10_000
# Smaller collections are not tuned (tuning needs held-out queries): IVF probes every list.
MIN_TUNING_ROWS = 2_000


@dataclass
class Hit:
    """One search result: the object and its cosine similarity to the query."""

    object_id: int
    score: float


def _make_index(plan: IndexPlan, dim: int) -> faiss.Index:
    if plan.factory.upper().startswith("IDMAP"):
        raise ValueError(
            f"factory {plan.factory!r}: leave out IDMap, roisearch adds object ids itself"
        )
    index = faiss.index_factory(dim, plan.factory, faiss.METRIC_INNER_PRODUCT)
    if plan.kind == "hnsw":
        hnsw = faiss.downcast_index(index)
        if isinstance(hnsw, faiss.IndexHNSW):
            hnsw.hnsw.efConstruction = int(plan.params.get("efConstruction", 40))
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is None:
        return faiss.IndexIDMap2(index)
    pq = faiss.downcast_index(ivf)
    if isinstance(pq, faiss.IndexIVFPQ):
        # Polysemous training (a code re-ordering for Hamming pre-filtering, unused here) is
        # most of the training time: 26 of 27 s for 2,500 vectors of 16-d.
        pq.do_polysemous_training = False  # type: ignore[attr-defined]
    if plan.kind != "ivfpq":
        # Lets a selective filtered search read the matching vectors back (exact path); the
        # compressed tier reads them from its vector file instead (and saves the hashtable).
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]
    return index


def _removable(index: faiss.Index) -> bool:
    """True if ``remove_ids`` works on ``index`` (IVF, or an id map over flat codes)."""
    if faiss.try_extract_index_ivf(index) is not None:
        return True
    top = faiss.downcast_index(index)
    if isinstance(top, faiss.IndexIDMap2):
        return isinstance(faiss.downcast_index(top.index), faiss.IndexFlatCodes)
    return False


class SpaceIndex:
    def __init__(
        self,
        *,
        space_id: int,
        space_key: str,
        dim: int,
        plan: IndexPlan,
        index: faiss.Index,
        table: ObjectTable,
        cursor: Cursor,
        overflow: faiss.Index | None = None,
        rejected: dict[int, str] | None = None,
        store: VectorStore | None = None,
    ) -> None:
        self.space_id = space_id
        self.space_key = space_key
        self.dim = dim
        self.plan = plan
        self.index = index
        self.table = table
        self.cursor = cursor
        self.overflow = overflow
        self.rejected: dict[int, str] = dict(rejected or {})
        # The compressed tier's float16 vectors (re-ranking, exact filtered scans), else None.
        self.store = store
        self.removable = _removable(index)
        self.ivf = faiss.try_extract_index_ivf(index)
        self.lock = RWLock()
        self.dirty = False
        self.created_at = time.time()
        self.last_snapshot_at: float | None = None
        self.snapshot_cursor: Cursor | None = None
        self._default: tuple[int, Candidates] | None = None

    # --- construction ------------------------------------------------------------------
    @classmethod
    def empty(
        cls,
        space_id: int,
        space_key: str,
        dim: int,
        plan: IndexPlan,
        *,
        cursor: Cursor | None = None,
        store: VectorStore | None = None,
    ) -> SpaceIndex:
        return cls(
            space_id=space_id,
            space_key=space_key,
            dim=dim,
            plan=plan,
            index=_make_index(plan, dim),
            table=ObjectTable(),
            cursor=cursor or Cursor(),
            store=store,
        )

    @classmethod
    def build(
        cls,
        space_id: int,
        space_key: str,
        dim: int,
        plan: IndexPlan,
        rows: ObjectRows,
        cursor: Cursor,
        *,
        seed: int = 0,
        store: VectorStore | None = None,
    ) -> SpaceIndex:
        """Train (if the type needs it), add ``rows`` and tune the search parameters.

        ``store``: the vector file of the compressed tier (required for ``ivfpq`` plans).
        Raises ``ValueError`` when the factory cannot be trained on this many vectors.
        """
        if plan.kind == "ivfpq" and store is None:
            raise ValueError("the compressed tier (ivfpq) needs a vector file")
        plan = IndexPlan(plan.kind, plan.factory, len(rows), plan.override, dict(plan.params))
        index = _make_index(plan, dim)
        if not index.is_trained:
            rng = np.random.default_rng(seed)
            ivf = faiss.try_extract_index_ivf(index)
            wanted = max(MIN_TRAIN_POINTS, TRAIN_POINTS_PER_LIST * (ivf.nlist if ivf else 256))
            pick = rng.choice(len(rows), size=min(wanted, len(rows)), replace=False)
            sample = np.ascontiguousarray(rows.vectors[np.sort(pick)])
            if ivf is not None and sample.shape[0] < ivf.nlist:
                raise ValueError(
                    f"{plan.factory!r} needs at least {ivf.nlist} vectors to train, "
                    f"space {space_id} has {len(rows)}"
                )
            try:
                index.train(sample)
            except RuntimeError as exc:
                raise ValueError(
                    f"{plan.factory!r} cannot be trained on {len(rows)} vectors: {exc}"
                ) from None
        space = cls(
            space_id=space_id,
            space_key=space_key,
            dim=dim,
            plan=plan,
            index=index,
            table=ObjectTable(),
            cursor=cursor,
            rejected=rows.rejected,
            store=store,
        )
        tunable = plan.kind in {"ivf", "ivfpq", "hnsw"} and len(rows) >= MIN_TUNING_ROWS
        if not tunable:
            # Too small to tune (and cheap to scan): probe everything / search widely.
            if space.ivf is not None:
                space.plan.params["nprobe"] = int(space.ivf.nlist)
            elif plan.kind == "hnsw":
                space.plan.params["efSearch"] = 64
            space.add(rows)
            return space
        # Tune on queries the index has not seen (stored vectors as queries find themselves
        # and their neighbourhood far too easily: measured 0.96 vs 0.81 recall for HNSW), then
        # add them too.
        rng = np.random.default_rng(seed)
        held = np.sort(rng.choice(len(rows), size=TUNING_QUERIES, replace=False))
        bounds = [-1, *held.tolist(), len(rows)]
        for before, after in itertools.pairwise(bounds):
            if after - before > 1:
                space.add(rows.slice(before + 1, after))
        space.tune(rows, held)
        space.add(rows.take(held))
        return space

    def tune(self, rows: ObjectRows, held: np.ndarray) -> None:
        """Pick ``nprobe`` / ``efSearch`` reaching :data:`RECALL_TARGET` for the ``held``
        rows (positions in ``rows``, not in the index yet) as queries."""
        queries = np.ascontiguousarray(rows.vectors[held])
        exact = exact_neighbours(rows.vectors, rows.ids, queries, TUNING_K + held.size)
        excluded = set(rows.ids[held].tolist())
        truth = np.full((held.size, TUNING_K), -1, np.int64)
        for row in range(held.size):
            kept = [i for i in exact[row] if int(i) not in excluded][:TUNING_K]
            truth[row, : len(kept)] = kept
        self.tune_on(queries, truth)

    def tune_on(self, queries: np.ndarray, truth: np.ndarray) -> None:
        """Tune on held-out ``queries`` (float32 ``[q, D]``, not in the index) whose exact
        top-10 among the indexed objects is ``truth`` (int64 ``[q, 10]``)."""
        unseen = np.full(queries.shape[0], -1, np.int64)
        if self.plan.kind in {"ivf", "ivfpq"} and self.ivf is not None:
            ivf = self.ivf

            def run_ivf(x: np.ndarray, k: int, nprobe: int) -> np.ndarray:
                params = self._wrap(search_params("SearchParametersIVF", nprobe=nprobe))
                return self._run_ivf(x, k, params).ids

            value, recall = tune(
                run_ivf, NPROBE_STEPS, queries, truth, unseen, RECALL_TARGET, ivf.nlist
            )
            self.plan.params["nprobe"] = value
        else:

            def run_hnsw(x: np.ndarray, k: int, ef: int) -> np.ndarray:
                params = search_params("SearchParametersHNSW", efSearch=ef)
                return np.asarray(self.index.search(x, k, params=params)[1])

            value, recall = tune(run_hnsw, EF_STEPS, queries, truth, unseen, RECALL_TARGET, 1024)
            self.plan.params["efSearch"] = value
        self.plan.params["tuned_recall"] = round(recall, 4)
        log.info(
            "space %d: %s tuned to %s (recall@10 %.3f on %d held-out queries)",
            self.space_id,
            self.plan.factory,
            {k: v for k, v in self.plan.params.items() if k in {"nprobe", "efSearch"}},
            recall,
            queries.shape[0],
        )

    # --- mutation (caller holds lock.write()) ------------------------------------------
    def add(self, rows: ObjectRows) -> None:
        """Add or replace objects (an id already present is replaced, never duplicated)."""
        if rows.rejected:
            self.rejected.update(rows.rejected)
        if len(rows) == 0:
            return
        # Keep the last row per id.
        _, last = np.unique(rows.ids[::-1], return_index=True)
        if last.shape[0] != len(rows):
            rows = rows.take(np.sort(len(rows) - 1 - last))
        ids = rows.ids
        if self.rejected:
            for object_id in ids:
                self.rejected.pop(int(object_id), None)
        if self.store is not None:
            self.store.write(ids, rows.vectors)
        in_overflow = self.table.flag("overflow", ids)
        if in_overflow.any() and self.overflow is not None:
            self.overflow.remove_ids(faiss.IDSelectorBatch(ids[in_overflow]))
            self.table.unset("overflow", ids[in_overflow])
        physical = self.table.flag("physical", ids)
        if self.removable:
            if physical.any():
                self._remove_main(ids[physical])
                self.table.unset("physical", ids[physical])
            self.index.add_with_ids(rows.vectors, ids)
            self.table.put(rows)
        else:
            # The main index still holds an older vector under these ids (HNSW cannot remove
            # it): the new copy goes to the exact side index, the old one stays filtered out.
            main = ~physical
            if main.any():
                self.index.add_with_ids(np.ascontiguousarray(rows.vectors[main]), ids[main])
            if physical.any():
                if self.overflow is None:
                    self.overflow = faiss.IndexIDMap2(
                        faiss.IndexFlat(self.dim, faiss.METRIC_INNER_PRODUCT)
                    )
                self.overflow.add_with_ids(
                    np.ascontiguousarray(rows.vectors[physical]), ids[physical]
                )
            self.table.put(rows, overflow=physical)
        self.dirty = True

    def remove(self, object_ids: np.ndarray) -> int:
        """Make ``object_ids`` unsearchable at once; returns how many were live."""
        ids = np.unique(np.asarray(object_ids, np.int64))
        if ids.size == 0:
            return 0
        if self.rejected:
            for object_id in ids:
                self.rejected.pop(int(object_id), None)
        was_live = self.table.kill(ids)
        in_overflow = ids[self.table.flag("overflow", ids)]
        if in_overflow.size and self.overflow is not None:
            self.overflow.remove_ids(faiss.IDSelectorBatch(in_overflow))
            self.table.unset("overflow", in_overflow)
        if self.removable:
            physical = ids[self.table.flag("physical", ids)]
            if physical.size:
                self._remove_main(physical)
                self.table.unset("physical", physical)
        if was_live.size or in_overflow.size:
            self.dirty = True
        return int(was_live.size)

    def _remove_main(self, ids: np.ndarray) -> None:
        ids = np.ascontiguousarray(ids, np.int64)
        if self.ivf is not None and self._reconstructs_from_index:
            # The IVF's id hashtable only takes an explicit id array (and then needs no scan).
            self.index.remove_ids(faiss.IDSelectorArray(ids.size, faiss.swig_ptr(ids)))
        else:
            self.index.remove_ids(faiss.IDSelectorBatch(ids))

    # --- reads (caller holds lock.read()) -----------------------------------------------
    @property
    def live_count(self) -> int:
        return self.table.live_count

    def search_work(self) -> int | None:
        """Multiply-adds one unfiltered query costs (order of magnitude), or None if unknown.

        Flat scans every vector; IVF scores the ``nlist`` centroids, then ``nprobe`` lists of
        ``ntotal / nlist`` vectors; HNSW visits about ``efSearch`` nodes of ``2·M`` neighbours.
        The small exact side index adds its own size.
        """
        d = self.dim
        side = self.overflow.ntotal * d if self.overflow is not None else 0
        if self.plan.kind == "flat":
            return int(self.index.ntotal) * d + side
        if self.ivf is not None:
            nlist = int(self.ivf.nlist)
            nprobe = int(self.plan.params.get("nprobe", nlist))
            per_list = math.ceil(int(self.index.ntotal) / max(nlist, 1))
            if self.store is not None:
                # PQ: one table lookup per code byte, then the re-ranked candidates in full.
                codes = nprobe * per_list * int(self.ivf.code_size)
                return (nlist + rerank_depth(10)) * d + codes + side
            return (nlist + nprobe * per_list) * d + side
        if self.plan.kind == "hnsw":
            ef = int(self.plan.params.get("efSearch", 64))
            return ef * 2 * HNSW_M * d + side
        return None

    def main_ids(self) -> np.ndarray:
        """Every id physically stored in the main index (int64, duplicates kept)."""
        if self.ivf is not None:
            lists: Any = self.ivf.invlists
            parts = [
                faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
                for i in range(self.ivf.nlist)
                if lists.list_size(i)
            ]
            return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)
        id_map: Any = faiss.downcast_index(self.index)
        return faiss.vector_to_array(id_map.id_map).astype(np.int64)

    def overflow_ids(self) -> np.ndarray:
        if self.overflow is None:
            return np.zeros(0, np.int64)
        overflow: Any = self.overflow
        return faiss.vector_to_array(overflow.id_map).astype(np.int64)

    def search(
        self, queries: np.ndarray, k: int, mask: np.ndarray | None, min_similarity: float | None
    ) -> list[list[Hit]]:
        """Top-``k`` live objects per query (restricted to ``mask`` slots if given).

        ``queries``: float32 ``[q, D]``, L2-normalised. ``mask``: bool ``[table.capacity]``
        of allowed slots (already ANDed with ``live``) or None for every live object.
        """
        q = queries.shape[0]
        if q == 0:
            return []
        if k <= 0 or self.live_count == 0:
            return [[] for _ in range(q)]
        faiss.omp_set_num_threads(1)  # one query per request: more threads only cost here
        c = self.table.columns
        has_overflow = self.overflow is not None and self.overflow.ntotal > 0
        main: Candidates | None = None
        if mask is not None:
            main = Candidates.of(mask & ~c["overflow"] if has_overflow else mask)
        elif self.table.stale_count:
            main = self._unfiltered_candidates()
        parts = [self._search_main(queries, k, main)]
        if has_overflow and self.overflow is not None:
            side = (c["live"] if mask is None else mask) & c["overflow"]
            parts.append(self._search_exact_flat(self.overflow, queries, k, side))
        result = merge(parts, k)
        out: list[list[Hit]] = []
        for row in range(q):
            hits = []
            for object_id, score in zip(result.ids[row], result.scores[row], strict=True):
                if object_id < 0:
                    continue
                if min_similarity is not None and score < min_similarity:
                    break
                hits.append(Hit(int(object_id), float(score)))
            out.append(hits)
        return out

    @property
    def _reconstructs(self) -> bool:
        """True if vectors can be read back by id (vector file, id map, or IVF with its id
        hashtable)."""
        return self.store is not None or self._reconstructs_from_index

    @property
    def _reconstructs_from_index(self) -> bool:
        if self.ivf is None:
            return True
        direct_map: Any = self.ivf.direct_map
        return int(direct_map.type) != 0  # 0: NoMap

    def _vectors(self, ids: np.ndarray) -> np.ndarray:
        """float32 ``[n, D]`` vectors of ``ids`` (stored objects): exact ones, from the vector
        file (float16) or the index."""
        if self.store is not None:
            return self.store.read(ids)
        return np.asarray(self.index.reconstruct_batch(ids), np.float32)

    def _unfiltered_candidates(self) -> Candidates:
        """Live ids not superseded by the side index, cached until the table changes."""
        cached = self._default
        version = self.table.version
        if cached is None or cached[0] != version:
            c = self.table.columns
            cached = (version, Candidates.of(c["live"] & ~c["overflow"]))
            self._default = cached
        return cached[1]

    def _wrap(self, params: faiss.SearchParameters) -> faiss.SearchParameters:
        if isinstance(faiss.downcast_index(self.index), faiss.IndexPreTransform):
            return search_params("SearchParametersPreTransform", index_params=params)
        return params

    def _search_main(
        self, queries: np.ndarray, k: int, candidates: Candidates | None
    ) -> Neighbours:
        q = queries.shape[0]
        live = max(self.live_count, 1)
        mask = candidates.mask if candidates is not None else None
        matching = live if candidates is None else candidates.count
        if matching == 0 or self.index.ntotal == 0:
            return Neighbours.empty(q, k)
        wanted = min(k, matching)
        selectivity = matching / live
        kind = self.plan.kind
        if candidates is not None and kind == "flat":
            return self._search_exact_flat(self.index, queries, k, candidates)
        # The vector file costs a page read per matching object: only the count bounds it.
        selective = selectivity < EXACT_SCAN_SELECTIVITY and self.store is None
        if mask is not None and self._reconstructs and (matching <= EXACT_SCAN_MAX or selective):
            return self._search_exact_reconstruct(queries, k, mask)
        selector = candidates.selector(self.table) if candidates is not None else None
        sel = selector.sel if selector is not None else None
        if self.ivf is not None:
            nprobe = int(self.plan.params.get("nprobe", 1))
            widened = min(self.ivf.nlist, math.ceil(nprobe / max(selectivity, 1e-9)))
            first = self._wrap(search_params("SearchParametersIVF", sel=sel, nprobe=widened))
            result = self._run_ivf(queries, k, first)
            short = np.flatnonzero(result.found() < wanted)
            if short.size and widened < self.ivf.nlist:
                # Every list scanned: exact among the matching objects.
                full = self._wrap(
                    search_params("SearchParametersIVF", sel=sel, nprobe=self.ivf.nlist)
                )
                again = self._run_ivf(np.ascontiguousarray(queries[short]), k, full)
                result.scores[short], result.ids[short] = again.scores, again.ids
            return result
        if kind == "hnsw":
            ef = int(self.plan.params.get("efSearch", 64))
            widened = int(min(EF_SEARCH_MAX, math.ceil(max(ef, k) / max(selectivity, 1e-9))))
            params = search_params("SearchParametersHNSW", sel=sel, efSearch=widened)
        else:
            params = search_params("SearchParameters", sel=sel)
        try:
            result = self._run(queries, k, params)
        except RuntimeError:
            # A custom index type without selector support: scan the matching objects.
            if mask is None:
                mask = self.table.columns["live"] & ~self.table.columns["overflow"]
            return self._search_exact_reconstruct(queries, k, mask)
        short = np.flatnonzero(result.found() < wanted)
        if short.size:
            if mask is None:
                mask = self.table.columns["live"] & ~self.table.columns["overflow"]
            again = self._search_exact_reconstruct(np.ascontiguousarray(queries[short]), k, mask)
            result.scores[short], result.ids[short] = again.scores, again.ids
        return result

    def _run(self, queries: np.ndarray, k: int, params: faiss.SearchParameters) -> Neighbours:
        scores, ids = self.index.search(queries, k, params=params)
        return Neighbours(np.asarray(scores, np.float32), np.asarray(ids, np.int64))

    def _run_ivf(self, queries: np.ndarray, k: int, params: faiss.SearchParameters) -> Neighbours:
        """An IVF search; the compressed tier fetches :func:`rerank_depth` PQ candidates and
        scores them exactly from the vector file."""
        if self.store is None:
            return self._run(queries, k, params)
        _, candidates = self.index.search(queries, rerank_depth(k), params=params)
        scores, ids = self.store.rerank(queries, np.asarray(candidates, np.int64), k)
        return Neighbours(scores, ids)

    def _search_exact_flat(
        self, index: faiss.Index, queries: np.ndarray, k: int, mask: np.ndarray | Candidates
    ) -> Neighbours:
        candidates = mask if isinstance(mask, Candidates) else Candidates.of(mask)
        if candidates.count == 0:
            return Neighbours.empty(queries.shape[0], k)
        selector = candidates.selector(self.table)
        params = search_params("SearchParameters", sel=selector.sel)
        scores, ids = index.search(queries, k, params=params)
        return Neighbours(np.asarray(scores, np.float32), np.asarray(ids, np.int64))

    def _search_exact_reconstruct(
        self, queries: np.ndarray, k: int, mask: np.ndarray
    ) -> Neighbours:
        """Exact top-k over the ``mask`` ids, reading their vectors back from the index."""
        ids = self.table.ids_where(mask)
        best = Neighbours.empty(queries.shape[0], k)
        for start in range(0, ids.shape[0], RECONSTRUCT_CHUNK):
            chunk = ids[start : start + RECONSTRUCT_CHUNK]
            vectors = self._vectors(chunk)
            scores = queries @ vectors.T
            take = min(k, chunk.shape[0])
            top = np.argpartition(-scores, take - 1, axis=1)[:, :take]
            part = Neighbours(
                np.take_along_axis(scores, top, axis=1).astype(np.float32), chunk[top]
            )
            best = merge([best, part], k)
        return best

    # --- reporting ---------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.plan.kind,
            "factory": self.plan.factory,
            "params": dict(self.plan.params),
            "built_for": self.plan.built_for,
            "override": self.plan.override,
            "count": self.live_count,
            "stale": self.table.stale_count,
            "overflow": int(self.overflow.ntotal) if self.overflow is not None else 0,
            "vector_file": str(self.store.path) if self.store is not None else None,
        }


@dataclass
class RebuildState:
    """Progress of a background rebuild of one space (reported by ``status``)."""

    running: bool = False
    reason: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    pending_removes: set[int] = field(default_factory=set)
    # The build's phase ("load", "train", "add") and its objects done / total.
    phase: str | None = None
    done: int = 0
    total: int = 0
