"""Which FAISS index a space gets, from its size and dimension (or a factory override).

Measured with ``bench/index.py`` on 2 cores, clustered 256-d unit vectors, held-out queries
(figures and method in ``docs/index.md``):

* exact ``Flat`` costs about 0.05 ms per 1k vectors per query at d=256 (≈ 5 ms at 100k,
  40–50 ms at 1M), is exact, and deletes and adds are free: used while one query stays within
  about a millisecond, ``n·d`` under :data:`FLAT_MAX_WORK` (20k vectors at d=256, 5k at d=1024).
  A larger exact scan also evicts the CPU caches the rest of a request runs from: through HTTP
  at 100k × 224-d, Flat answered in 5.5 ms p50 (3.3 ms of it the scan), IVF in 1.0 ms;
* above that, ``IVF{≈4√n},Flat`` with ``nprobe`` tuned on held-out queries: at 100k it beat
  ``HNSW32`` (efConstruction 100, ``efSearch`` tuned the same way) on every count — recall@10
  0.998 vs 0.979, a third of the build CPU time, lower latency, 20 % less memory — and at 1M
  it builds in about a minute where HNSW takes 7–10; it also deletes for real and adds cheaply.

Above a memory budget (``ROISEARCH_INDEX_MEMORY_BUDGET_MB``: what IVF-Flat's float32 vectors
would hold in RAM), the compressed tier ``IVF{≈4√n},PQ{m}x8`` (``m`` bytes per vector, 32–64)
keeps only the PQ codes in memory and re-ranks the top candidates exactly from float16 copies
in a memory-mapped file beside the snapshots (:mod:`shared.index.vector_store`).

HNSW stays available through the override (``ROISEARCH_INDEX_FACTORY=HNSW32``): deleted ids
are then filtered out until a rebuild. Any FAISS factory string can be given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import faiss

FLAT_MAX_WORK = 20_000 * 256
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 100
# Recall@10 the tuner aims for on its held-out queries; the goal is 0.95 on any queries.
RECALL_TARGET = 0.97
# A new IVF is built (retrained, re-tuned) when the collection outgrows it by this factor.
GROWTH_REBUILD_FACTOR = 4.0
# Fraction of the main index's ids that may be dead (HNSW cannot remove) before a rebuild.
STALE_REBUILD_FRACTION = 0.2

KINDS = ("flat", "ivf", "ivfpq", "hnsw", "custom")
# Memory per object of an IVF-Flat index beyond its float32 vector: the id in its list and the
# id hashtable (measured: 1,075 B/obj at d=256 with the metadata, see docs/index.md).
IVF_FLAT_EXTRA_BYTES = 24
# Back from the compressed tier to IVF-Flat only when that would use under this share of the
# budget (no flapping at the edge).
BUDGET_HYSTERESIS = 0.5
# The compressed tier re-ranks this many PQ candidates per wanted result (at least RERANK_MIN).
RERANK_FACTOR = 10
RERANK_MIN = 100
# PQ's 8-bit codebooks train on at least 256 vectors: no compressed tier below.
COMPRESSED_MIN_OBJECTS = 256


def rerank_depth(k: int) -> int:
    """PQ candidates fetched for a top-``k`` search of the compressed tier."""
    return max(RERANK_MIN, RERANK_FACTOR * k)


@dataclass
class IndexPlan:
    """The index a space should have: its FAISS factory string and search parameters.

    ``kind``: ``flat`` (exact), ``hnsw``, ``ivf``, ``ivfpq`` (the compressed tier: PQ codes
    in memory, float16 re-ranking from a file) or ``custom`` (an override that is neither
    of the others); ``built_for``: the collection size the plan was made for.
    """

    kind: str
    factory: str
    built_for: int = 0
    override: bool = False
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "factory": self.factory,
            "built_for": self.built_for,
            "override": self.override,
            "params": dict(self.params),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IndexPlan:
        kind = str(data["kind"])
        if kind not in KINDS:
            raise ValueError(f"unknown index kind {kind!r}")
        return cls(
            kind=kind,
            factory=str(data["factory"]),
            built_for=int(data.get("built_for", 0)),
            override=bool(data.get("override", False)),
            params=dict(data.get("params", {})),
        )


def ivf_lists(n: int) -> int:
    """``nlist`` ≈ 4·√n rounded to a power of two, with ≥ 39 training points per list."""
    target = 4.0 * math.sqrt(max(n, 1))
    nlist = 2 ** round(math.log2(max(target, 1.0)))
    return int(max(1, min(nlist, n // 39 if n >= 39 else 1)))


def pq_bytes(dim: int) -> int:
    """PQ code bytes per vector: ``dim / 4`` (4 dimensions per 8-bit sub-quantiser), capped at
    64 and lowered to a divisor of ``dim``."""
    m = max(1, min(64, dim // 4))
    while dim % m:
        m -= 1
    return m


def ivf_flat_bytes(n: int, dim: int) -> int:
    """RAM an IVF-Flat index of ``n`` vectors needs (float32 vectors, ids, id hashtable)."""
    return n * (4 * dim + IVF_FLAT_EXTRA_BYTES)


@dataclass(frozen=True)
class IndexPolicy:
    """The exact-search limit, expressed as vectors × dimension (the cost of one query), and
    the RAM budget of one space's index (None: no limit, IVF-Flat at every size)."""

    flat_max_work: int = FLAT_MAX_WORK
    memory_budget_bytes: int | None = None

    def over_budget(self, n: int, dim: int, share: float = 1.0) -> bool:
        budget = self.memory_budget_bytes
        return budget is not None and ivf_flat_bytes(n, dim) > budget * share

    def choose(self, n: int, dim: int, override: str | None = None) -> IndexPlan:
        if override:
            kind = kind_of_factory(override, dim)
            params = {"efConstruction": HNSW_EF_CONSTRUCTION} if kind == "hnsw" else {}
            return IndexPlan(kind, override, built_for=n, override=True, params=params)
        if n * dim < self.flat_max_work:
            return IndexPlan(kind="flat", factory="Flat", built_for=n)
        if n >= COMPRESSED_MIN_OBJECTS and self.over_budget(n, dim):
            factory = f"IVF{ivf_lists(n)},PQ{pq_bytes(dim)}x8"
            return IndexPlan(kind="ivfpq", factory=factory, built_for=n)
        return IndexPlan(kind="ivf", factory=f"IVF{ivf_lists(n)},Flat", built_for=n)

    def rebuild_reason(
        self, plan: IndexPlan, live: int, stale: int, dim: int, override: str | None
    ) -> str | None:
        """Why the index in memory should be replaced by a fresh build, or None."""
        if override and (not plan.override or plan.factory != override):
            return f"the factory override changed to {override!r}"
        if not override and plan.override:
            return "the factory override was removed"
        physical = live + stale
        if stale and physical and stale / physical > STALE_REBUILD_FRACTION:
            return f"{stale} of {physical} ids in the index are deleted objects"
        if plan.override:
            return None
        wanted = self.choose(live, dim)
        if plan.kind == "flat" and wanted.kind != "flat":
            return f"{live} objects call for a {wanted.factory} index instead of exact search"
        if plan.kind in {"ivf", "ivfpq"} and wanted.kind == "flat":
            # Hysteresis: back to exact only well below the threshold (no flapping at the edge).
            if live * GROWTH_REBUILD_FACTOR < plan.built_for:
                return f"{live} objects no longer need an IVF index"
            return None
        if plan.kind == "ivf" and wanted.kind == "ivfpq":
            return f"{live} objects outgrow the index memory budget: {wanted.factory} instead"
        if (
            plan.kind == "ivfpq"
            and wanted.kind != "ivfpq"
            and not self.over_budget(live, dim, BUDGET_HYSTERESIS)
        ):
            return f"{live} objects fit the memory budget uncompressed: {wanted.factory}"
        if plan.kind in {"ivf", "ivfpq"} and live > GROWTH_REBUILD_FACTOR * max(plan.built_for, 1):
            return f"the collection grew from {plan.built_for} to {live} objects"
        if plan.kind not in {"flat", "ivf", "ivfpq"}:
            return f"a {plan.factory} index without an override: the policy wants {wanted.factory}"
        return None


def kind_of_factory(factory: str, dim: int) -> str:
    """Classify a factory string by the index it builds (``ValueError`` if FAISS rejects it)."""
    try:
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise ValueError(f"invalid FAISS factory string {factory!r}: {exc}") from None
    if faiss.try_extract_index_ivf(index) is not None:
        return "ivf"
    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexIDMap | faiss.IndexIDMap2):
        inner = faiss.downcast_index(inner.index)
    if isinstance(inner, faiss.IndexHNSW):
        return "hnsw"
    if isinstance(inner, faiss.IndexFlat):
        return "flat"
    return "custom"
